//! JSON control-plane bodies (HELLO, LIST, OPEN, OPENED, CLOSE, CLOSED, RESUME, ERROR, events).
//!
//! Vendor and product ids are 4-digit lowercase hex strings (`"1050"`), as in the ACL file.

use serde::{Deserialize, Serialize};

use crate::limits::MAX_CONTROL_JSON;

/// Serde helper: `u16` as 4 hex digits.
pub mod hex16 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialises as `"1050"`.
    pub fn serialize<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:04x}"))
    }

    /// Parses 1–4 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| D::Error::custom("expected 1-4 hex digits"))
    }

    /// Parses 1–4 hex digits.
    pub fn parse(text: &str) -> Option<u16> {
        let ok = !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| u16::from_str_radix(text, 16).ok()).flatten()
    }
}

/// Serde helper: `Option<u16>` as 4 hex digits or null.
pub mod opt_hex16 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialises as `"1050"` or null.
    pub fn serialize<S: Serializer>(v: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{v:04x}")),
            None => s.serialize_none(),
        }
    }

    /// Parses hex digits or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) => super::hex16::parse(&t)
                .map(Some)
                .ok_or_else(|| D::Error::custom("expected 1-4 hex digits")),
        }
    }
}

/// An endpoint of an alternate setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// Address, bit 7 = IN.
    pub address: u8,
    /// `control`, `isochronous`, `bulk` or `interrupt`.
    pub kind: String,
    /// wMaxPacketSize.
    pub max_packet_size: u16,
    /// bInterval.
    pub interval: u8,
}

/// One alternate setting of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt: u8,
    /// Class triple.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Protocol.
    pub protocol: u8,
    /// Endpoints.
    pub endpoints: Vec<EndpointInfo>,
}

/// A device as listed and as described in OPENED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Stable id on this host (bus and port path, e.g. `1-2.3`).
    pub bus_id: String,
    /// idVendor.
    #[serde(with = "hex16")]
    pub vendor_id: u16,
    /// idProduct.
    #[serde(with = "hex16")]
    pub product_id: u16,
    /// Serial number string, if any.
    pub serial: Option<String>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// `low`, `full`, `high`, `super`, `super_plus` or `unknown`.
    pub speed: String,
    /// bcdDevice.
    pub bcd_device: u16,
    /// Device class triple.
    pub class: u8,
    /// Device subclass.
    pub subclass: u8,
    /// Device protocol.
    pub protocol: u8,
    /// Active configuration value.
    pub active_configuration: u8,
    /// Port path, e.g. `1-2.3`.
    pub port_path: String,
    /// Interfaces (every alternate setting) of the active configuration.
    pub interfaces: Vec<InterfaceInfo>,
}

/// What OPENED carries; the same shape as a listed device.
pub type DeviceDescription = DeviceInfo;

/// Which device to open. Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFilter {
    /// idVendor.
    #[serde(default, with = "opt_hex16", skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<u16>,
    /// idProduct.
    #[serde(default, with = "opt_hex16", skip_serializing_if = "Option::is_none")]
    pub product_id: Option<u16>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Bus id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_id: Option<String>,
}

impl DeviceFilter {
    /// Whether a device matches.
    pub fn matches(&self, d: &DeviceInfo) -> bool {
        self.vendor_id.is_none_or(|v| v == d.vendor_id)
            && self.product_id.is_none_or(|p| p == d.product_id)
            && self
                .serial
                .as_ref()
                .is_none_or(|s| Some(s) == d.serial.as_ref())
            && self.bus_id.as_ref().is_none_or(|b| *b == d.bus_id)
    }
}

/// HELLO capability: the sender accepts frames with payloads up to its `max_frame_payload`.
pub const LARGE_FRAMES: &str = "large_frames";

/// HELLO, first message in each direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the sender speaks.
    pub versions: Vec<u32>,
    /// Capabilities, e.g. `multi_in_flight`, `streams`, `resume`, `large_frames`.
    pub capabilities: Vec<String>,
    /// The sender's per-claim receive window in bytes (≥ 1 MiB).
    pub window: u32,
    /// With `large_frames`: the largest frame payload (request id + chunk) the sender accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_payload: Option<u32>,
}

impl Hello {
    /// This implementation's HELLO: every capability it has, `window`, and large frames.
    pub fn current(window: u32, capabilities: &[&str]) -> Self {
        let mut caps: Vec<String> = capabilities.iter().map(|c| (*c).to_owned()).collect();
        caps.push(LARGE_FRAMES.to_owned());
        Self {
            versions: vec![crate::limits::PROTOCOL_VERSION],
            capabilities: caps,
            window,
            max_frame_payload: Some(crate::limits::LARGE_FRAME_PAYLOAD as u32),
        }
    }

    /// The largest frame payload to send to the sender of this HELLO: its `max_frame_payload`
    /// when it lists `large_frames`, at least 16 KiB and at most [`LARGE_FRAME_PAYLOAD`];
    /// otherwise 16 KiB (a peer without the capability).
    ///
    /// [`LARGE_FRAME_PAYLOAD`]: crate::limits::LARGE_FRAME_PAYLOAD
    pub fn frame_payload(&self) -> usize {
        use crate::limits::{LARGE_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD};
        match self.max_frame_payload {
            Some(n) if self.capabilities.iter().any(|c| c == LARGE_FRAMES) => {
                (n as usize).clamp(MAX_FRAME_PAYLOAD, LARGE_FRAME_PAYLOAD)
            }
            _ => MAX_FRAME_PAYLOAD,
        }
    }
}

/// LIST reply (a LIST request has an empty object body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    /// Devices the ACL would not deny.
    pub devices: Vec<DeviceInfo>,
}

/// OPEN request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// Which device.
    pub filter: DeviceFilter,
}

/// OPENED reply (also the reply to RESUME, with `resumed = true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// Claim id allocated by the host.
    pub claim_id: u16,
    /// Device description.
    pub device: DeviceInfo,
    /// Resume token (hex), single-claim, single-use: a successful RESUME issues a new one.
    pub resume_token: String,
    /// How long the host keeps the claim after the transport drops.
    pub retention_ms: u64,
    /// True when this answers a RESUME.
    #[serde(default)]
    pub resumed: bool,
    /// RESUME only: pending request ids the host never received (safe to send again).
    #[serde(default)]
    pub unknown: Vec<u32>,
    /// RESUME only: request ids executed whose completion is no longer retained.
    #[serde(default)]
    pub lost: Vec<u32>,
}

/// Why a claim closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ClosedReason {
    Requested,
    Unplugged,
    ProtocolError,
    RetentionExpired,
    Shutdown,
}

/// CLOSED body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Why.
    pub reason: ClosedReason,
}

/// RESUME request (frame claim id = the claim to resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Token from OPENED (hex).
    pub token: String,
    /// Request ids the client still waits for.
    pub pending: Vec<u32>,
}

/// Error vocabulary (see `docs/usb-protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ErrorCode {
    UnknownOp,
    Malformed,
    TooLarge,
    CreditExhausted,
    Denied,
    NoDevice,
    Busy,
    UnknownClaim,
    ReplayedRequest,
    TooManyInFlight,
    BadState,
    VersionMismatch,
    ResumeRejected,
    Io,
}

/// ERROR body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

/// DEVICE_EVENT body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEvent {
    /// `added` or `removed`.
    pub event: String,
    /// The device.
    pub device: DeviceInfo,
}

/// Parses a JSON body with its size bound checked first.
///
/// # Errors
/// A readable message when too large or not the expected object.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    if body.len() > MAX_CONTROL_JSON {
        return Err(format!("control message exceeds {MAX_CONTROL_JSON} bytes"));
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
}

/// Serialises a control body.
pub fn to_body<T: Serialize>(value: &T) -> bytes::Bytes {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_device() -> DeviceInfo {
        DeviceInfo {
            bus_id: "1-2".into(),
            vendor_id: 0x1050,
            product_id: 0x0407,
            serial: Some("123".into()),
            manufacturer: Some("Yubico".into()),
            product: Some("YubiKey".into()),
            speed: "full".into(),
            bcd_device: 0x0512,
            class: 0,
            subclass: 0,
            protocol: 0,
            active_configuration: 1,
            port_path: "1-2".into(),
            interfaces: vec![InterfaceInfo {
                number: 0,
                alt: 0,
                class: 3,
                subclass: 0,
                protocol: 0,
                endpoints: vec![EndpointInfo {
                    address: 0x81,
                    kind: "interrupt".into(),
                    max_packet_size: 64,
                    interval: 5,
                }],
            }],
        }
    }

    #[test]
    fn ids_serialise_as_hex_strings() {
        let json = serde_json::to_value(sample_device()).unwrap();
        assert_eq!(json["vendor_id"], "1050");
        assert_eq!(json["product_id"], "0407");
        let back: DeviceInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample_device());
    }

    #[test]
    fn every_control_body_round_trips() {
        let opened = Opened {
            claim_id: 1,
            device: sample_device(),
            resume_token: "ab".into(),
            retention_ms: 30_000,
            resumed: false,
            unknown: vec![],
            lost: vec![],
        };
        assert_eq!(parse::<Opened>(&to_body(&opened)), Ok(opened));
        let hello = Hello {
            versions: vec![2],
            capabilities: vec!["resume".into()],
            window: 1 << 20,
            max_frame_payload: None,
        };
        assert_eq!(
            &to_body(&hello)[..],
            br#"{"versions":[2],"capabilities":["resume"],"window":1048576}"#
        );
        assert_eq!(parse::<Hello>(&to_body(&hello)), Ok(hello));
        let err = ErrorBody {
            code: ErrorCode::CreditExhausted,
            message: "x".into(),
        };
        assert_eq!(
            parse::<ErrorBody>(&to_body(&err)).unwrap().code,
            ErrorCode::CreditExhausted
        );
        let closed = Closed {
            reason: ClosedReason::Unplugged,
        };
        assert_eq!(&to_body(&closed)[..], br#"{"reason":"unplugged"}"#);
        let resume = Resume {
            token: "ab".into(),
            pending: vec![1, 2],
        };
        assert_eq!(parse::<Resume>(&to_body(&resume)), Ok(resume));
    }

    #[test]
    fn a_peer_without_large_frames_gets_16_kib_frames() {
        use crate::limits::{LARGE_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD};
        let old: Hello =
            parse(br#"{"versions":[2],"capabilities":["resume"],"window":1048576}"#).unwrap();
        assert_eq!(old.frame_payload(), MAX_FRAME_PAYLOAD);
        let field_only: Hello = parse(
            br#"{"versions":[2],"capabilities":[],"window":1048576,"max_frame_payload":99999}"#,
        )
        .unwrap();
        assert_eq!(
            field_only.frame_payload(),
            MAX_FRAME_PAYLOAD,
            "needs the capability"
        );
        let current = Hello::current(1 << 20, &["resume"]);
        assert_eq!(current.frame_payload(), LARGE_FRAME_PAYLOAD);
        let huge = Hello {
            max_frame_payload: Some(u32::MAX),
            ..current.clone()
        };
        assert_eq!(
            huge.frame_payload(),
            LARGE_FRAME_PAYLOAD,
            "capped at our own bound"
        );
        let tiny = Hello {
            max_frame_payload: Some(10),
            ..current
        };
        assert_eq!(
            tiny.frame_payload(),
            MAX_FRAME_PAYLOAD,
            "every peer takes 16 KiB"
        );
    }

    #[test]
    fn filter_matches_only_given_fields() {
        let d = sample_device();
        assert!(DeviceFilter::default().matches(&d));
        assert!(
            DeviceFilter {
                vendor_id: Some(0x1050),
                ..Default::default()
            }
            .matches(&d)
        );
        assert!(
            !DeviceFilter {
                serial: Some("999".into()),
                ..Default::default()
            }
            .matches(&d)
        );
        let f: DeviceFilter =
            serde_json::from_str(r#"{"vendor_id":"1050","product_id":"407"}"#).unwrap();
        assert!(f.matches(&d));
        assert!(serde_json::from_str::<DeviceFilter>(r#"{"vendor_id":"zz"}"#).is_err());
    }
}
