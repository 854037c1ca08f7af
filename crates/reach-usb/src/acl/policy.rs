//! The ACL as the host driver's [`AccessPolicy`], with the operator prompt.
//!
//! The file is read again whenever it changed on disk (another process — `reach usb acl …`, the
//! host API — saved it), so a running agent follows the host's ACL without a restart; a changed
//! file that fails its integrity check denies everything, as at start.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

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
    acl: Mutex<Loaded>,
    prompt: Arc<dyn OpenPrompt>,
}

/// The ACL as read, and which version of the file it was read from.
struct Loaded {
    acl: UsbAcl,
    stamp: Option<FileStamp>,
}

/// Identifies one version of a file: modification time, size and inode (saves replace the file
/// by renaming, so the inode changes even within one timestamp tick).
type FileStamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl AclPolicy {
    /// Loads the ACL at `path`.
    pub fn load(path: PathBuf, options: AclOptions, prompt: Arc<dyn OpenPrompt>) -> Self {
        let stamp = stamp(&path);
        let acl = store::load(&path, &options);
        Self {
            path,
            options,
            acl: Mutex::new(Loaded { acl, stamp }),
            prompt,
        }
    }

    /// The current ACL (read again first if the file changed since the last read).
    pub fn snapshot(&self) -> UsbAcl {
        self.current().acl.clone()
    }

    fn current(&self) -> MutexGuard<'_, Loaded> {
        let mut loaded = self
            .acl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = stamp(&self.path);
        if now != loaded.stamp {
            loaded.stamp = now;
            loaded.acl = store::load(&self.path, &self.options);
        }
        loaded
    }

    fn remember(&self, device: &DeviceInfo) {
        let mut loaded = self.current();
        let rule = AclRule {
            vendor_id: Some(device.vendor_id),
            product_id: Some(device.product_id),
            serial: device.serial.clone(),
            label: device.product.clone(),
            allow: true,
            ..AclRule::default()
        };
        loaded.acl.file.rules.insert(0, rule);
        if let Err(e) = store::save(&self.path, &loaded.acl.file, &self.options.key) {
            tracing::error!(error = %e, "could not persist the remembered USB rule");
        }
        loaded.stamp = stamp(&self.path);
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
