//! The host's own USB operations as data: one [`HostOp`] is one thing `reach usb …`, an action
//! file (`reach run`) or MCP can ask this machine to do — the passthrough switch, the ACL, the
//! local loopback. [`HostOp::run`] is the only implementation; every surface calls it.
//!
//! Ops deserialize from JSON (`{"op": "usb_acl_add", "rule": {"vendor_id": "0525"}}`); unknown
//! fields are refused.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::acl::{AclFile, AclRule, Verdict};
use crate::enablement;
use crate::proto::DeviceFilter;
use crate::tools::{self, UsbPaths};

/// One host-local USB operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostOp {
    /// Turns the host's passthrough switch on.
    UsbPassthroughEnable,
    /// Turns it off (open claims are released by a running agent).
    UsbPassthroughDisable,
    /// The switch and the ACL's integrity.
    UsbPassthroughStatus,
    /// The ACL: rules, default, integrity.
    UsbAclList,
    /// Adds a rule (signed on save); `first` puts it before the others.
    UsbAclAdd {
        /// The rule (`vendor_id`, `product_id`, `serial`, `allow`, `prompt_on_open`, …).
        #[schemars(with = "serde_json::Map<String, Value>")]
        rule: AclRule,
        /// Insert before the existing rules.
        #[serde(default)]
        first: bool,
    },
    /// Removes the rule at `index` (as `usb_acl_list` numbers them).
    UsbAclRemove {
        /// Rule index.
        index: usize,
    },
    /// Sets the verdict for devices no rule matches.
    UsbAclSetDefault {
        /// `allow` or `deny`.
        #[schemars(with = "VerdictName")]
        verdict: Verdict,
    },
    /// The ACL file's content (refused when it failed its integrity check).
    UsbAclExport,
    /// Replaces the ACL with `acl` (signed on save).
    UsbAclImport {
        /// An exported ACL.
        #[schemars(with = "serde_json::Map<String, Value>")]
        acl: AclFile,
    },
    /// Devices this host would share, through its own host session (no network).
    UsbLoopbackList {
        /// `system` (default) or `fake`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<String>,
    },
    /// Claims a device locally and reads its descriptor; `prompt_on_open` rules are answered
    /// "deny" (nobody to ask).
    UsbLoopbackOpen {
        /// Which device (empty: the first allowed).
        #[serde(default)]
        #[schemars(with = "serde_json::Map<String, Value>")]
        filter: DeviceFilter,
        /// `system` (default) or `fake`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<String>,
    },
}

/// How `Verdict` is written (for the schema).
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum VerdictName {
    Allow,
    Deny,
}

impl HostOp {
    /// Its name (`usb_acl_add`…).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v["op"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Runs it on this host; the answer as JSON (what `reach usb … --json` prints).
    ///
    /// # Errors
    /// One sentence naming what failed and, where there is one, the fix.
    pub async fn run(&self, paths: &UsbPaths) -> Result<Value, String> {
        match self {
            Self::UsbPassthroughEnable | Self::UsbPassthroughDisable => {
                let on = matches!(self, Self::UsbPassthroughEnable);
                enablement::set(&paths.config_dir, on)
                    .map_err(|e| format!("cannot write the passthrough switch: {e}"))?;
                Ok(status(paths))
            }
            Self::UsbPassthroughStatus => Ok(status(paths)),
            Self::UsbAclList => acl_list(paths),
            Self::UsbAclAdd { rule, first } => {
                tools::acl_edit(paths, |f| {
                    f.rules
                        .insert(if *first { 0 } else { f.rules.len() }, rule.clone());
                    Ok(())
                })?;
                acl_list(paths)
            }
            Self::UsbAclRemove { index } => {
                tools::acl_edit(paths, |f| {
                    if *index >= f.rules.len() {
                        return Err(format!(
                            "no rule at index {index}; `reach usb acl list` shows {} rules",
                            f.rules.len()
                        ));
                    }
                    f.rules.remove(*index);
                    Ok(())
                })?;
                acl_list(paths)
            }
            Self::UsbAclSetDefault { verdict } => {
                tools::acl_edit(paths, |f| {
                    f.default = *verdict;
                    Ok(())
                })?;
                acl_list(paths)
            }
            Self::UsbAclExport => {
                let report = tools::acl_report(paths);
                if !report.integrity_ok {
                    return Err(format!(
                        "the ACL failed its integrity check ({}); refusing to export it",
                        report.problem.unwrap_or_default()
                    ));
                }
                serde_json::to_value(&report.file).map_err(|e| e.to_string())
            }
            Self::UsbAclImport { acl } => {
                let text = serde_json::to_string(acl).map_err(|e| e.to_string())?;
                tools::acl_import(paths, &text)?;
                acl_list(paths)
            }
            Self::UsbLoopbackList { backend } => {
                let backend = tools::backend_named(backend.as_deref().unwrap_or("system"))?;
                let devices = tools::loopback_list(paths, backend)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "devices": devices }))
            }
            Self::UsbLoopbackOpen { filter, backend } => {
                let backend = tools::backend_named(backend.as_deref().unwrap_or("system"))?;
                let report = tools::loopback_open(paths, backend, filter.clone(), false)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(&report).map_err(|e| e.to_string())
            }
        }
    }
}

/// The passthrough switch and the ACL's integrity.
pub fn status(paths: &UsbPaths) -> Value {
    let e = paths.passthrough();
    let acl = tools::acl_report(paths);
    json!({"enabled": e.enabled, "source": e.source, "acl_integrity_ok": acl.integrity_ok, "acl_problem": acl.problem})
}

fn acl_list(paths: &UsbPaths) -> Result<Value, String> {
    serde_json::to_value(tools::acl_report(paths)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> (tempfile::TempDir, UsbPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = UsbPaths {
            config_dir: dir.path().to_path_buf(),
        };
        (dir, paths)
    }

    #[tokio::test]
    async fn acl_ops_edit_the_signed_file_and_a_bad_index_changes_nothing() {
        let (_dir, paths) = paths();
        let add: HostOp = serde_json::from_value(
            json!({"op": "usb_acl_add", "rule": {"vendor_id": "0525", "allow": true}}),
        )
        .unwrap();
        let listed = add.run(&paths).await.unwrap();
        assert_eq!(listed["rules"][0]["vendor_id"], "0525", "{listed}");
        assert_eq!(listed["integrity_ok"], true);
        let err = HostOp::UsbAclRemove { index: 5 }
            .run(&paths)
            .await
            .unwrap_err();
        assert!(err.contains("no rule at index 5"), "{err}");
        let after = HostOp::UsbAclList.run(&paths).await.unwrap();
        assert_eq!(after["rules"].as_array().map(Vec::len), Some(1));
        let exported = HostOp::UsbAclExport.run(&paths).await.unwrap();
        let import: HostOp =
            serde_json::from_value(json!({"op": "usb_acl_import", "acl": exported})).unwrap();
        assert_eq!(import.run(&paths).await.unwrap()["rules"], after["rules"]);
    }

    #[tokio::test]
    async fn the_switch_and_the_fake_loopback_work_from_ops() {
        if std::env::var_os(enablement::ENV_VAR).is_some() {
            return;
        }
        let (_dir, paths) = paths();
        let list: HostOp =
            serde_json::from_value(json!({"op": "usb_loopback_list", "backend": "fake"})).unwrap();
        let off = list.run(&paths).await;
        assert!(
            off.is_err(),
            "nothing is shared with the switch off: {off:?}"
        );
        let on = HostOp::UsbPassthroughEnable.run(&paths).await.unwrap();
        assert_eq!(on["enabled"], true);
        let rule = json!({"op": "usb_acl_add", "rule": {"vendor_id": "0525", "allow": true}});
        serde_json::from_value::<HostOp>(rule)
            .unwrap()
            .run(&paths)
            .await
            .unwrap();
        let listed = list.run(&paths).await.unwrap();
        assert_eq!(listed["devices"][0]["vendor_id"], "0525", "{listed}");
        let off = HostOp::UsbPassthroughDisable.run(&paths).await.unwrap();
        assert_eq!(off["enabled"], false);
        assert!(
            serde_json::from_value::<HostOp>(json!({"op": "usb_acl_add", "rule": {}, "x": 1}))
                .is_err(),
            "unknown fields are refused"
        );
    }
}
