//! The host's USB ACL rules (SPEC §9.2) and the one permission check, [`UsbAcl::decide`]. The
//! signed file and the operator prompt live in `reach-usb` (`acl::store`, `acl::policy`).
//!
//! First matching rule wins; `null` fields match anything. Without a matching rule, hubs and FIDO
//! security keys are denied, then `default` applies. An ACL whose integrity check failed denies
//! everything.

use serde::{Deserialize, Serialize};

use crate::proto::DeviceInfo;
use crate::proto::control::opt_hex16;

/// The only file version understood.
pub const ACL_VERSION: u32 = 1;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Allow.
    Allow,
    /// Deny.
    Deny,
}

/// One rule. Every present field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// idVendor (hex).
    #[serde(default, with = "opt_hex16")]
    pub vendor_id: Option<u16>,
    /// idProduct (hex).
    #[serde(default, with = "opt_hex16")]
    pub product_id: Option<u16>,
    /// Serial; `null` matches any.
    #[serde(default)]
    pub serial: Option<String>,
    /// Some interface has this class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_class: Option<u8>,
    /// … and this subclass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_subclass: Option<u8>,
    /// … and this protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_protocol: Option<u8>,
    /// Port path, e.g. `1-2.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_path: Option<String>,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Allow (true) or deny.
    pub allow: bool,
    /// Ask the host operator on every open even when allowed.
    #[serde(default)]
    pub prompt_on_open: bool,
}

impl AclRule {
    /// Whether the rule matches a device.
    pub fn matches(&self, d: &DeviceInfo) -> bool {
        let iface = self.interface_class.is_none()
            && self.interface_subclass.is_none()
            && self.interface_protocol.is_none()
            || d.interfaces.iter().any(|i| {
                self.interface_class.is_none_or(|c| c == i.class)
                    && self.interface_subclass.is_none_or(|s| s == i.subclass)
                    && self.interface_protocol.is_none_or(|p| p == i.protocol)
            });
        self.vendor_id.is_none_or(|v| v == d.vendor_id)
            && self.product_id.is_none_or(|p| p == d.product_id)
            && self
                .serial
                .as_ref()
                .is_none_or(|s| Some(s) == d.serial.as_ref())
            && self.port_path.as_ref().is_none_or(|p| *p == d.port_path)
            && iface
    }
}

/// The ACL file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclFile {
    /// Must be [`ACL_VERSION`].
    pub version: u32,
    /// Verdict when no rule matches.
    pub default: Verdict,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<AclRule>,
}

impl Default for AclFile {
    fn default() -> Self {
        Self {
            version: ACL_VERSION,
            default: Verdict::Deny,
            rules: Vec::new(),
        }
    }
}

/// What the ACL says about opening a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Open without asking.
    Allow,
    /// Ask the host operator first.
    Prompt,
    /// Refuse (and never list).
    Deny,
}

/// A loaded ACL with its integrity state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbAcl {
    /// Rules (empty and deny when integrity failed).
    pub file: AclFile,
    /// False when the file failed its signature, parse, version or permission check.
    pub integrity_ok: bool,
    /// Why integrity failed, for the operator.
    pub problem: Option<String>,
    /// Whether the loaded file carried a valid signature.
    pub signed: bool,
}

/// Whether a device is a hub.
pub fn is_hub(d: &DeviceInfo) -> bool {
    d.class == 9 || d.interfaces.iter().any(|i| i.class == 9)
}

/// Whether a device looks like a FIDO security key (CTAP HID; names and well-known vendors).
pub fn is_fido(d: &DeviceInfo) -> bool {
    const FIDO_VENDORS: [u16; 5] = [0x1050, 0x096e, 0x20a0, 0x1ea8, 0x2581];
    let hid = d.interfaces.iter().any(|i| i.class == 3);
    let named = [&d.product, &d.manufacturer]
        .into_iter()
        .flatten()
        .any(|s| {
            let s = s.to_ascii_lowercase();
            s.contains("fido")
                || s.contains("u2f")
                || s.contains("security key")
                || s.contains("yubikey")
        });
    hid && (named || FIDO_VENDORS.contains(&d.vendor_id))
}

impl UsbAcl {
    /// An ACL that failed integrity: denies everything.
    pub fn failed_closed(problem: String) -> Self {
        Self {
            file: AclFile::default(),
            integrity_ok: false,
            problem: Some(problem),
            signed: false,
        }
    }

    /// The one permission check for opening and listing devices.
    pub fn decide(&self, device: &DeviceInfo) -> Decision {
        if !self.integrity_ok {
            return Decision::Deny;
        }
        if let Some(rule) = self.file.rules.iter().find(|r| r.matches(device)) {
            return match (rule.allow, rule.prompt_on_open) {
                (false, _) => Decision::Deny,
                (true, true) => Decision::Prompt,
                (true, false) => Decision::Allow,
            };
        }
        if is_hub(device) || is_fido(device) {
            return Decision::Deny;
        }
        match self.file.default {
            Verdict::Allow => Decision::Allow,
            Verdict::Deny => Decision::Deny,
        }
    }

    /// Whether LIST may reveal the device.
    pub fn visible(&self, device: &DeviceInfo) -> bool {
        self.decide(device) != Decision::Deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::InterfaceInfo;
    use crate::proto::control::tests::sample_device;

    fn acl(json: &str) -> UsbAcl {
        UsbAcl {
            file: serde_json::from_str(json).unwrap(),
            integrity_ok: true,
            problem: None,
            signed: true,
        }
    }

    fn plain_device() -> DeviceInfo {
        let mut d = sample_device();
        d.vendor_id = 0x0525;
        d.product_id = 0xa4a0;
        d.product = Some("Gadget".into());
        d.manufacturer = None;
        d.interfaces[0].class = 0xff;
        d
    }

    #[test]
    fn first_matching_rule_wins() {
        let a = acl(r#"{"version":1,"default":"allow","rules":[
            {"vendor_id":"0525","product_id":"a4a0","serial":null,"allow":false},
            {"vendor_id":"0525","allow":true}]}"#);
        assert_eq!(a.decide(&plain_device()), Decision::Deny);
    }

    #[test]
    fn null_serial_matches_any_and_a_given_serial_must_match() {
        let a = acl(
            r#"{"version":1,"default":"deny","rules":[{"vendor_id":"0525","serial":"XYZ","allow":true}]}"#,
        );
        assert_eq!(a.decide(&plain_device()), Decision::Deny);
        let b = acl(
            r#"{"version":1,"default":"deny","rules":[{"vendor_id":"0525","serial":null,"allow":true}]}"#,
        );
        assert_eq!(b.decide(&plain_device()), Decision::Allow);
    }

    #[test]
    fn default_applies_when_nothing_matches() {
        assert_eq!(
            acl(r#"{"version":1,"default":"deny"}"#).decide(&plain_device()),
            Decision::Deny
        );
        assert_eq!(
            acl(r#"{"version":1,"default":"allow"}"#).decide(&plain_device()),
            Decision::Allow
        );
    }

    #[test]
    fn hubs_and_fido_keys_need_an_explicit_rule() {
        let open = acl(r#"{"version":1,"default":"allow"}"#);
        let mut hub = plain_device();
        hub.class = 9;
        assert_eq!(open.decide(&hub), Decision::Deny);
        let key = sample_device();
        assert_eq!(open.decide(&key), Decision::Deny);
        let explicit = acl(
            r#"{"version":1,"default":"deny","rules":[{"vendor_id":"1050","product_id":"0407","allow":true}]}"#,
        );
        assert_eq!(explicit.decide(&key), Decision::Allow);
    }

    #[test]
    fn interface_class_and_port_path_rules_match() {
        let a = acl(
            r#"{"version":1,"default":"deny","rules":[{"interface_class":255,"port_path":"1-2","allow":true,"prompt_on_open":true}]}"#,
        );
        assert_eq!(a.decide(&plain_device()), Decision::Prompt);
        let mut elsewhere = plain_device();
        elsewhere.port_path = "3-1".into();
        assert_eq!(a.decide(&elsewhere), Decision::Deny);
        let mut storage = plain_device();
        storage.interfaces = vec![InterfaceInfo {
            number: 0,
            alt: 0,
            class: 8,
            subclass: 6,
            protocol: 0x50,
            endpoints: vec![],
        }];
        assert_eq!(a.decide(&storage), Decision::Deny);
    }

    #[test]
    fn failed_integrity_denies_everything() {
        let a = UsbAcl::failed_closed("bad signature".into());
        assert_eq!(a.decide(&plain_device()), Decision::Deny);
        assert!(!a.visible(&plain_device()));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(
            serde_json::from_str::<AclFile>(r#"{"version":1,"default":"deny","rulez":[]}"#)
                .is_err()
        );
    }
}
