//! The ACL as the host driver's [`AccessPolicy`], with the operator prompt.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::store::{self, AclKey, AclOptions};
use super::{AclRule, Decision, UsbAcl};
use crate::backend::BoxFuture;
use crate::net::AccessPolicy;
use crate::proto::DeviceInfo;

/// The operator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAnswer {
    /// Allow this once.
    Allow,
    /// Allow and persist an allow rule for this vendor/product/serial.
    AllowAndRemember,
    /// Deny.
    Deny,
    /// Nobody answered in time: denied.
    NoAnswer,
}

impl PromptAnswer {
    /// The answer's name in audit records: `allow_once`, `allow_and_remember`, `deny`,
    /// `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow_once",
            Self::AllowAndRemember => "allow_and_remember",
            Self::Deny => "deny",
            Self::NoAnswer => "timeout",
        }
    }
}

/// Asks the host operator whether a technician may open a device.
pub trait OpenPrompt: Send + Sync + 'static {
    /// Shows vendor/product/serial and who asks; returns the answer.
    fn ask<'a>(&'a self, device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, PromptAnswer>;
}

/// A prompt that always gives the same answer (headless hosts deny).
#[derive(Debug, Clone, Copy)]
pub struct FixedAnswer(pub PromptAnswer);

impl OpenPrompt for FixedAnswer {
    fn ask<'a>(&'a self, _device: &'a DeviceInfo, _viewer: &'a str) -> BoxFuture<'a, PromptAnswer> {
        let answer = self.0;
        Box::pin(async move { answer })
    }
}

/// The ACL file plus prompt, as an [`AccessPolicy`].
pub struct AclPolicy {
    path: PathBuf,
    options: AclOptions,
    acl: Mutex<UsbAcl>,
    prompt: Arc<dyn OpenPrompt>,
}

impl AclPolicy {
    /// Loads the ACL at `path`.
    pub fn load(path: PathBuf, options: AclOptions, prompt: Arc<dyn OpenPrompt>) -> Self {
        let acl = store::load(&path, &options);
        Self {
            path,
            options,
            acl: Mutex::new(acl),
            prompt,
        }
    }

    /// The current ACL.
    pub fn snapshot(&self) -> UsbAcl {
        self.acl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, device: &DeviceInfo) {
        let mut acl = self
            .acl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rule = AclRule {
            vendor_id: Some(device.vendor_id),
            product_id: Some(device.product_id),
            serial: device.serial.clone(),
            label: device.product.clone(),
            allow: true,
            ..AclRule::default()
        };
        acl.file.rules.insert(0, rule);
        if let Err(e) = store::save(&self.path, &acl.file, &self.options.key) {
            tracing::error!(error = %e, "could not persist the remembered USB rule");
        }
    }
}

impl AccessPolicy for AclPolicy {
    fn visible(&self, device: &DeviceInfo) -> bool {
        self.snapshot().visible(device)
    }

    fn decide_open<'a>(&'a self, device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.decide_open_answered(device, viewer).await.0 })
    }

    fn decide_open_answered<'a>(
        &'a self,
        device: &'a DeviceInfo,
        viewer: &'a str,
    ) -> BoxFuture<'a, (bool, Option<PromptAnswer>)> {
        Box::pin(async move {
            match self.snapshot().decide(device) {
                Decision::Allow => (true, None),
                Decision::Deny => (false, None),
                Decision::Prompt => {
                    let answer = self.prompt.ask(device, viewer).await;
                    let allowed = match answer {
                        PromptAnswer::Allow => true,
                        PromptAnswer::AllowAndRemember => {
                            self.remember(device);
                            true
                        }
                        PromptAnswer::Deny | PromptAnswer::NoAnswer => false,
                    };
                    (allowed, Some(answer))
                }
            }
        })
    }
}

/// Convenience: the key option for a path (`AclKey::File`).
pub fn file_key() -> AclKey {
    AclKey::File
}
