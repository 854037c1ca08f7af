//! The host operator's answer for ACL rules with `prompt_on_open`, asked through the agent's
//! consent prompt (terminal, desktop dialog, answer file, scripted in tests).

use std::sync::Arc;

use reach_proto::limits::CONSENT_TIMEOUT;
use reach_proto::v1::AccessMode;
use reach_usb::acl::policy::{OpenPrompt, PromptAnswer};
use reach_usb::backend::BoxFuture;
use reach_usb::proto::DeviceInfo;

use crate::consent::{ConsentAnswer, ConsentPrompt, ConsentQuestion};

/// Asks the person at the machine whether a technician may open a `prompt_on_open` device. Only
/// an explicit yes allows (this open only); no answer within the consent timeout denies.
pub struct ConsentOpenPrompt(pub Arc<dyn ConsentPrompt>);

impl OpenPrompt for ConsentOpenPrompt {
    fn ask<'a>(&'a self, device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, PromptAnswer> {
        let prompt = Arc::clone(&self.0);
        let question = question(device, viewer);
        Box::pin(async move {
            let blocking = tokio::task::spawn_blocking(move || prompt.ask(&question));
            match tokio::time::timeout(CONSENT_TIMEOUT, blocking).await {
                Ok(Ok(ConsentAnswer::Yes)) => PromptAnswer::Allow,
                _ => PromptAnswer::Deny,
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
