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

/// The question for `viewer` (`<viewer id>@<session id>`, as the USB service names it).
pub(crate) fn question(device: &DeviceInfo, viewer: &str) -> ConsentQuestion {
    let session_id = viewer.split_once('@').map_or("", |(_, s)| s).to_owned();
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
        technician: String::new(),
        access: AccessMode::Control,
        usb: true,
        usb_device: Some(described),
    }
}
