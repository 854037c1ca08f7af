//! Host-local operations behind `reach usb …`: list with ACL verdicts, ACL editing, loopback
//! (the full protocol stack in-process), audit verification. Reports are serialisable so the
//! CLI prints them as text or `--json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::acl::policy::{AclPolicy, FixedAnswer, PromptAnswer};
use crate::acl::store::{self, AclKey, AclOptions};
use crate::acl::{AclFile, Decision, UsbAcl};
use crate::audit::LocalAudit;
use crate::backend::fake::{FakeBackend, FakeDevice};
use crate::backend::{BackendError, UsbBackend};
use crate::client::UsbClient;
use crate::error::UsbError;
use crate::host::{HostConfig, HostSession};
use crate::net::{HostRunner, memory_pair};
use crate::proto::{DeviceFilter, DeviceInfo, Setup};

/// Files of the host's USB configuration.
#[derive(Debug, Clone)]
pub struct UsbPaths {
    /// The agent's config directory.
    pub config_dir: PathBuf,
}

impl UsbPaths {
    /// `REACH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/reach`, else `$HOME/.config/reach`.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("REACH_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let base = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config")
                    });
                base.join("reach")
            });
        Self { config_dir: dir }
    }

    /// The ACL file.
    pub fn acl(&self) -> PathBuf {
        self.config_dir.join("usb-acl.json")
    }

    /// The local audit log.
    pub fn audit(&self) -> PathBuf {
        self.config_dir.join("usb-audit.jsonl")
    }

    /// The effective passthrough switch: `REACH_USB_PASSTHROUGH`, else `reach usb enable|disable`,
    /// else off.
    pub fn passthrough(&self) -> crate::enablement::Enablement {
        let env = std::env::var(crate::enablement::ENV_VAR).ok();
        crate::enablement::resolve(&self.config_dir, None, env.as_deref())
    }

    /// ACL load options (`REACH_USB_ACL_REQUIRE_SIGNATURE=1` requires a signature).
    pub fn acl_options(&self) -> AclOptions {
        let require = std::env::var("REACH_USB_ACL_REQUIRE_SIGNATURE").is_ok_and(|v| v == "1");
        AclOptions {
            key: AclKey::File,
            require_signature: require,
        }
    }
}

/// The backend by name: `system` (default) or `fake` (two demo devices: the loopback device
/// `0525:a4a0` and a CDC-ACM serial adapter `0525:a4a7` that echoes).
pub fn backend_named(name: &str) -> Result<Arc<dyn UsbBackend>, String> {
    match name {
        "system" => Ok(crate::backend::system_backend()),
        "fake" => {
            let backend = FakeBackend::new();
            backend.add(FakeDevice::loopback());
            backend.add(FakeDevice::cdc_acm());
            Ok(Arc::new(backend))
        }
        other => Err(format!("unknown backend {other:?}; use system or fake")),
    }
}

fn verdict(acl: &UsbAcl, d: &DeviceInfo) -> &'static str {
    match acl.decide(d) {
        Decision::Allow => "allow",
        Decision::Prompt => "prompt",
        Decision::Deny => "deny",
    }
}

/// One local device with the ACL's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct LocalDevice {
    /// The device.
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// `allow`, `prompt` or `deny`.
    pub verdict: &'static str,
}

/// `reach usb list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// Backend name.
    pub backend: &'static str,
    /// Whether a USB bus exists.
    pub usb_bus: bool,
    /// Devices (all of them: this is the host operator's own view).
    pub devices: Vec<LocalDevice>,
    /// ACL integrity.
    pub acl_integrity_ok: bool,
    /// Why integrity failed.
    pub acl_problem: Option<String>,
}

/// Lists local devices with ACL verdicts. A machine without a USB bus gives an empty list.
///
/// # Errors
/// [`BackendError`] other than [`BackendError::NoBus`].
pub async fn list_local(
    paths: &UsbPaths,
    backend: &dyn UsbBackend,
) -> Result<ListReport, BackendError> {
    let acl = store::load(&paths.acl(), &paths.acl_options());
    let (usb_bus, devices) = match backend.list().await {
        Ok(d) => (true, d),
        Err(BackendError::NoBus) => (false, Vec::new()),
        Err(e) => return Err(e),
    };
    let devices = devices
        .into_iter()
        .map(|device| LocalDevice {
            verdict: verdict(&acl, &device),
            device,
        })
        .collect();
    Ok(ListReport {
        backend: backend.name(),
        usb_bus,
        devices,
        acl_integrity_ok: acl.integrity_ok,
        acl_problem: acl.problem,
    })
}

/// `reach usb acl list`.
#[derive(Debug, Clone, Serialize)]
pub struct AclReport {
    /// ACL path.
    pub path: PathBuf,
    /// Integrity.
    pub integrity_ok: bool,
    /// Why not.
    pub problem: Option<String>,
    /// Whether it carried a valid signature.
    pub signed: bool,
    /// The content (empty/deny when integrity failed).
    #[serde(flatten)]
    pub file: AclFile,
}

/// Loads the ACL for display.
pub fn acl_report(paths: &UsbPaths) -> AclReport {
    let acl = store::load(&paths.acl(), &paths.acl_options());
    AclReport {
        path: paths.acl(),
        integrity_ok: acl.integrity_ok,
        problem: acl.problem,
        signed: acl.signed,
        file: acl.file,
    }
}

/// Edits the ACL and saves it signed. Refuses to re-sign an ACL that failed its integrity check.
///
/// # Errors
/// A readable message when integrity failed, the edit failed, or saving failed.
pub fn acl_edit(
    paths: &UsbPaths,
    edit: impl FnOnce(&mut AclFile) -> Result<(), String>,
) -> Result<AclFile, String> {
    let acl = store::load(&paths.acl(), &paths.acl_options());
    if !acl.integrity_ok {
        return Err(format!(
            "the ACL failed its integrity check ({}); inspect {} and `reach usb acl import` a known-good file",
            acl.problem.unwrap_or_default(),
            paths.acl().display()
        ));
    }
    let mut file = acl.file;
    edit(&mut file)?;
    std::fs::create_dir_all(&paths.config_dir).map_err(|e| e.to_string())?;
    store::save(&paths.acl(), &file, &AclKey::File).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Imports an ACL from JSON text (validated, then saved signed).
///
/// # Errors
/// A readable message when the JSON is invalid or has an unknown version.
pub fn acl_import(paths: &UsbPaths, json: &str) -> Result<AclFile, String> {
    let file: AclFile = serde_json::from_str(json).map_err(|e| format!("not a valid ACL: {e}"))?;
    if file.version != crate::acl::ACL_VERSION {
        return Err(format!("unknown ACL version {}", file.version));
    }
    std::fs::create_dir_all(&paths.config_dir).map_err(|e| e.to_string())?;
    store::save(&paths.acl(), &file, &AclKey::File).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Runs a host session and a client in-process over memory, with the real passthrough switch,
/// ACL and audit log (LIST and OPEN are refused while passthrough is off).
/// `audit`: the chain to append to when this process already holds it open (an agent);
/// `None` opens the log in `paths`.
fn loopback(
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
    assume_yes: bool,
    audit: Option<Arc<LocalAudit>>,
) -> UsbClient {
    let answer = if assume_yes {
        PromptAnswer::Allow
    } else {
        PromptAnswer::Deny
    };
    let policy = AclPolicy::load(
        paths.acl(),
        paths.acl_options(),
        Arc::new(FixedAnswer(answer)),
    );
    let viewer = format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    );
    let mut runner = HostRunner::new(
        HostSession::new(
            HostConfig {
                passthrough: paths.passthrough().enabled,
                ..HostConfig::default()
            },
            Instant::now(),
        ),
        backend,
        Arc::new(policy),
        &viewer,
    );
    let audit = audit.or_else(|| {
        std::fs::create_dir_all(&paths.config_dir).ok()?;
        LocalAudit::open(&paths.audit(), "local").ok().map(Arc::new)
    });
    if let Some(audit) = audit {
        runner = runner.with_audit(audit);
    }
    let (host_end, client_end) = memory_pair();
    tokio::spawn(runner.serve(host_end));
    UsbClient::connect(client_end)
}

/// `reach usb loopback list`: what a remote viewer would see.
///
/// # Errors
/// [`UsbError`] from the protocol.
pub async fn loopback_list(
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
) -> Result<Vec<DeviceInfo>, UsbError> {
    loopback_list_in(paths, backend, None).await
}

/// [`loopback_list`] appending to an already open audit chain.
///
/// # Errors
/// [`UsbError`] from the protocol.
pub async fn loopback_list_in(
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
    audit: Option<Arc<LocalAudit>>,
) -> Result<Vec<DeviceInfo>, UsbError> {
    loopback(paths, backend, false, audit).list().await
}

/// `reach usb loopback open`.
#[derive(Debug, Clone, Serialize)]
pub struct LoopbackOpenReport {
    /// Claim id the host allocated.
    pub claim_id: u16,
    /// OPENED description.
    pub device: DeviceInfo,
    /// The 18-byte device descriptor read with GET_DESCRIPTOR, hex.
    pub device_descriptor: String,
    /// bcdUSB from the descriptor, e.g. `2.00`.
    pub usb_version: String,
    /// idVendor:idProduct from the descriptor.
    pub descriptor_ids: String,
}

/// Claims a device through the full protocol stack and reads its device descriptor.
///
/// # Errors
/// [`UsbError::Denied`], [`UsbError::NoDevice`], transfer errors.
pub async fn loopback_open(
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
    filter: DeviceFilter,
    assume_yes: bool,
) -> Result<LoopbackOpenReport, UsbError> {
    loopback_open_in(paths, backend, filter, assume_yes, None).await
}

/// [`loopback_open`] appending to an already open audit chain.
///
/// # Errors
/// [`UsbError::Denied`], [`UsbError::NoDevice`], transfer errors.
pub async fn loopback_open_in(
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
    filter: DeviceFilter,
    assume_yes: bool,
    audit: Option<Arc<LocalAudit>>,
) -> Result<LoopbackOpenReport, UsbError> {
    let client = loopback(paths, backend, assume_yes, audit);
    let handle = client.open(filter).await?;
    let desc = handle.control_in(Setup::get_device_descriptor()).await;
    let (claim_id, device) = (handle.claim_id(), handle.device().clone());
    handle.close().await;
    let desc = desc?;
    if desc.len() < 12 {
        return Err(UsbError::Protocol(format!(
            "device descriptor too short: {} bytes",
            desc.len()
        )));
    }
    Ok(LoopbackOpenReport {
        claim_id,
        device,
        device_descriptor: hex::encode(&desc),
        usb_version: format!("{:x}.{:02x}", desc[3], desc[2]),
        descriptor_ids: format!(
            "{:02x}{:02x}:{:02x}{:02x}",
            desc[9], desc[8], desc[11], desc[10]
        ),
    })
}

/// Verifies the local audit log.
///
/// # Errors
/// When the file cannot be read.
pub fn audit_verify(path: &Path) -> Result<crate::audit::VerifyReport, crate::audit::AuditError> {
    crate::audit::verify_file(path)
}
