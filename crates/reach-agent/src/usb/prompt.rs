//! The host operator's answer for ACL rules with `prompt_on_open`, asked through the agent's
//! consent prompt (terminal, desktop dialog, answer file, scripted in tests).

use std::sync::Arc;
use std::time::Duration;

use reach_proto::limits::CONSENT_TIMEOUT;
use reach_proto::v1::AccessMode;
use reach_usb::acl::policy::{OpenPrompt, PromptAnswer};
use reach_usb::backend::BoxFuture;
use reach_usb::proto::DeviceInfo;

use crate::consent::{ConsentAnswer, ConsentPrompt, ConsentQuestion};

/// Asks the person at the machine whether a technician may open a `prompt_on_open` device:
/// *allow once* (yes), *allow and remember* (a remembered yes: a signed allow rule is written),
/// *deny* (anything else). No answer within the timeout (the consent timeout, 60 s) denies.
pub struct ConsentOpenPrompt(pub Arc<dyn ConsentPrompt>, pub Duration);

impl ConsentOpenPrompt {
    /// Asks through `prompt`, waiting [`CONSENT_TIMEOUT`] for an answer.
    pub fn new(prompt: Arc<dyn ConsentPrompt>) -> Self {
        Self(prompt, CONSENT_TIMEOUT)
    }

    /// Waits `timeout` for an answer instead (tests).
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self(self.0, timeout)
    }
}

impl OpenPrompt for ConsentOpenPrompt {
    fn ask<'a>(&'a self, device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, PromptAnswer> {
        let prompt = Arc::clone(&self.0);
        let question = question(device, viewer);
        let timeout = self.1;
        Box::pin(async move {
            let blocking = tokio::task::spawn_blocking(move || prompt.ask(&question));
            match tokio::time::timeout(timeout, blocking).await {
                Ok(Ok(ConsentAnswer::Yes)) => PromptAnswer::Allow,
                Ok(Ok(ConsentAnswer::YesRemember)) => PromptAnswer::AllowAndRemember,
                Ok(Ok(ConsentAnswer::No | ConsentAnswer::Unavailable)) | Ok(Err(_)) => {
                    PromptAnswer::Deny
                }
                Err(_) => PromptAnswer::NoAnswer,
            }
        })
    }
}

/// How the USB service names a viewer's host session (in prompts and audit records):
/// `<viewer id>@<session id>`, then `:<technician>` when the server named the user.
pub(crate) fn viewer_label(viewer_id: u64, session_id: &str, technician: Option<&str>) -> String {
    match technician {
        Some(name) => format!("{viewer_id}@{session_id}:{name}"),
        None => format!("{viewer_id}@{session_id}"),
    }
}

/// The session id and technician name in a [`viewer_label`].
fn parse_label(viewer: &str) -> (&str, &str) {
    let after = viewer.split_once('@').map_or("", |(_, s)| s);
    after.split_once(':').unwrap_or((after, ""))
}

/// The question for `viewer` (a [`viewer_label`]).
pub(crate) fn question(device: &DeviceInfo, viewer: &str) -> ConsentQuestion {
    let (session_id, technician) = parse_label(viewer);
    let (session_id, technician) = (session_id.to_owned(), technician.to_owned());
    let mut described = format!("{:04x}:{:04x}", device.vendor_id, device.product_id);
    let details: Vec<String> = [
        device.product.clone(),
        device.serial.as_ref().map(|s| format!("serial {s}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !details.is_empty() {
        described.push_str(&format!(" ({})", details.join(", ")));
    }
    ConsentQuestion {
        session_id,
        technician,
        access: AccessMode::Control,
        usb: true,
        usb_device: Some(described),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceInfo {
        let mut info = None;
        let _ =
            reach_usb::backend::fake::FakeDevice::loopback().with_info(|d| info = Some(d.clone()));
        info.expect("the loopback device's description")
    }

    #[test]
    fn the_question_names_the_session_and_the_technician_the_server_named() {
        let q = question(&device(), &viewer_label(7, "ses-1", Some("alice")));
        assert_eq!(
            (q.session_id.as_str(), q.technician.as_str()),
            ("ses-1", "alice")
        );
        assert!(
            q.sentence()
                .starts_with("alice asks to use the USB device 0525:a4a0")
        );
    }

    #[test]
    fn an_unnamed_viewer_is_asked_about_as_a_technician() {
        let q = question(&device(), &viewer_label(7, "ses-1", None));
        assert_eq!(
            (q.session_id.as_str(), q.technician.as_str()),
            ("ses-1", "")
        );
        assert!(q.sentence().starts_with("A technician asks"));
    }
}
