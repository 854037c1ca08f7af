//! Binary data-plane bodies: transfer requests and replies, configuration ops, streams, credit.
//!
//! All integers big-endian. Layouts (after the frame's `request_id`) are in
//! `docs/usb-protocol.md`; parsers check lengths against the declared sizes and against
//! [`MAX_TRANSFER`] before touching the data.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::limits::MAX_TRANSFER;

/// A body that does not match its op's layout.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {what}: {why}")]
pub struct BodyError {
    /// Which body.
    pub what: &'static str,
    /// What is wrong.
    pub why: String,
}

fn bad(what: &'static str, why: impl Into<String>) -> BodyError {
    BodyError {
        what,
        why: why.into(),
    }
}

/// Per-transfer result (SPEC §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum TransferStatus {
    Ok = 0,
    Cancelled = 1,
    Stall = 2,
    Timeout = 3,
    NoDevice = 4,
    Overflow = 5,
    IoError = 6,
    Invalid = 7,
}

impl TransferStatus {
    /// Maps a wire byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        use TransferStatus::*;
        [
            Ok, Cancelled, Stall, Timeout, NoDevice, Overflow, IoError, Invalid,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
    }

    /// Lowercase name used in docs, JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Cancelled => "cancelled",
            Self::Stall => "stall",
            Self::Timeout => "timeout",
            Self::NoDevice => "no_device",
            Self::Overflow => "overflow",
            Self::IoError => "io_error",
            Self::Invalid => "invalid",
        }
    }
}

/// Transfer flags (bit 0 short-not-ok, bit 1 zero-length packet after a full OUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferFlags(pub u8);

impl TransferFlags {
    /// An IN transfer shorter than requested is an error.
    pub const SHORT_NOT_OK: u8 = 0x01;
    /// Send a zero-length packet after an OUT that ends on a packet boundary.
    pub const ZERO_PACKET: u8 = 0x02;

    /// Whether short-not-ok is set.
    pub fn short_not_ok(self) -> bool {
        self.0 & Self::SHORT_NOT_OK != 0
    }

    /// Whether zero-length-packet is set.
    pub fn zero_packet(self) -> bool {
        self.0 & Self::ZERO_PACKET != 0
    }
}

/// A USB control setup packet (fields in host order; big-endian on the Reach wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Setup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
    pub length: u16,
}

impl Setup {
    /// Whether the data stage is device-to-host.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }

    /// GET_DESCRIPTOR(DEVICE), 18 bytes.
    pub fn get_device_descriptor() -> Self {
        Self {
            request_type: 0x80,
            request: 6,
            value: 0x0100,
            index: 0,
            length: 18,
        }
    }
}

/// Which kind of transfer, and on which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Control transfer on endpoint 0.
    Control(Setup),
    /// Bulk transfer; the endpoint address's bit 7 gives the direction.
    Bulk(u8),
    /// Interrupt transfer.
    Interrupt(u8),
}

/// One transfer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// Kind and endpoint.
    pub kind: TransferKind,
    /// Flags.
    pub flags: TransferFlags,
    /// Device-side timeout in milliseconds (0 = none).
    pub timeout_ms: u32,
    /// IN: bytes wanted. OUT: equals `data.len()`.
    pub length: u32,
    /// OUT data (empty for IN).
    pub data: Bytes,
}

impl TransferRequest {
    /// Whether data flows device-to-host.
    pub fn is_in(&self) -> bool {
        match self.kind {
            TransferKind::Control(setup) => setup.is_in(),
            TransferKind::Bulk(ep) | TransferKind::Interrupt(ep) => ep & 0x80 != 0,
        }
    }

    /// Encodes the body (without frame header and request id).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }

    /// Length of the encoded body.
    pub fn encoded_len(&self) -> usize {
        let header = match self.kind {
            TransferKind::Control(_) => 13,
            TransferKind::Bulk(_) | TransferKind::Interrupt(_) => 10,
        };
        header + self.data.len()
    }

    /// Appends the encoded body to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        match self.kind {
            TransferKind::Control(s) => {
                out.put_u8(self.flags.0);
                out.put_u32(self.timeout_ms);
                out.put_u8(s.request_type);
                out.put_u8(s.request);
                out.put_u16(s.value);
                out.put_u16(s.index);
                out.put_u16(s.length);
            }
            TransferKind::Bulk(ep) | TransferKind::Interrupt(ep) => {
                out.put_u8(ep);
                out.put_u8(self.flags.0);
                out.put_u32(self.timeout_ms);
                out.put_u32(self.length);
            }
        }
        out.put_slice(&self.data);
    }

    /// Decodes a CONTROL body.
    ///
    /// # Errors
    /// [`BodyError`] when short, or OUT data does not match `wLength`, or IN carries data.
    pub fn decode_control(mut body: Bytes) -> Result<Self, BodyError> {
        const WHAT: &str = "CONTROL request";
        if body.len() < 13 {
            return Err(bad(WHAT, format!("{} bytes, need 13", body.len())));
        }
        let flags = TransferFlags(body.get_u8());
        let timeout_ms = body.get_u32();
        let setup = Setup {
            request_type: body.get_u8(),
            request: body.get_u8(),
            value: body.get_u16(),
            index: body.get_u16(),
            length: body.get_u16(),
        };
        let expected = if setup.is_in() {
            0
        } else {
            usize::from(setup.length)
        };
        if body.len() != expected {
            return Err(bad(
                WHAT,
                "data length does not match wLength and direction",
            ));
        }
        Ok(Self {
            kind: TransferKind::Control(setup),
            flags,
            timeout_ms,
            length: u32::from(setup.length),
            data: body,
        })
    }

    /// Decodes a BULK (`interrupt == false`) or INTERRUPT body.
    ///
    /// # Errors
    /// [`BodyError`] when short, too long, or the data does not match the direction and length.
    pub fn decode_endpoint(mut body: Bytes, interrupt: bool) -> Result<Self, BodyError> {
        let what = if interrupt {
            "INTERRUPT request"
        } else {
            "BULK request"
        };
        if body.len() < 10 {
            return Err(bad(what, format!("{} bytes, need 10", body.len())));
        }
        let ep = body.get_u8();
        let flags = TransferFlags(body.get_u8());
        let timeout_ms = body.get_u32();
        let length = body.get_u32();
        if length > MAX_TRANSFER {
            return Err(bad(what, format!("length {length} exceeds {MAX_TRANSFER}")));
        }
        if ep & 0x0F == 0 {
            return Err(bad(what, "endpoint 0 is for CONTROL"));
        }
        let expected = if ep & 0x80 != 0 { 0 } else { length as usize };
        if body.len() != expected {
            return Err(bad(what, "data length does not match length and direction"));
        }
        let kind = if interrupt {
            TransferKind::Interrupt(ep)
        } else {
            TransferKind::Bulk(ep)
        };
        Ok(Self {
            kind,
            flags,
            timeout_ms,
            length,
            data: body,
        })
    }
}

/// One transfer reply: `status u8 | reserved u8 | actual_length u32 | data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReply {
    /// Result.
    pub status: TransferStatus,
    /// Bytes transferred (IN: `data.len()`).
    pub actual_length: u32,
    /// IN data.
    pub data: Bytes,
}

impl TransferReply {
    /// A reply with a status and no data.
    pub fn status(status: TransferStatus) -> Self {
        Self {
            status,
            actual_length: 0,
            data: Bytes::new(),
        }
    }

    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }

    /// Length of the encoded body.
    pub fn encoded_len(&self) -> usize {
        6 + self.data.len()
    }

    /// Appends the encoded body to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        out.put_u8(self.status as u8);
        out.put_u8(0);
        out.put_u32(self.actual_length);
        out.put_slice(&self.data);
    }

    /// Decodes a reply body.
    ///
    /// # Errors
    /// [`BodyError`] when short, with an unknown status, or IN data longer than `actual_length`.
    pub fn decode(mut body: Bytes) -> Result<Self, BodyError> {
        const WHAT: &str = "transfer reply";
        if body.len() < 6 {
            return Err(bad(WHAT, format!("{} bytes, need 6", body.len())));
        }
        let status =
            TransferStatus::from_u8(body.get_u8()).ok_or_else(|| bad(WHAT, "unknown status"))?;
        let _reserved = body.get_u8();
        let actual_length = body.get_u32();
        if body.len() > actual_length as usize {
            return Err(bad(WHAT, "more data than actual_length"));
        }
        Ok(Self {
            status,
            actual_length,
            data: body,
        })
    }
}

/// Configuration operations and their bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOp {
    /// SET_CONFIGURATION: `config u8`.
    SetConfiguration(u8),
    /// SET_INTERFACE: `interface u8 | alt u8`.
    SetInterface(u8, u8),
    /// CLEAR_HALT: `endpoint u8`.
    ClearHalt(u8),
    /// RESET: empty.
    Reset,
}

impl ConfigOp {
    /// Encodes the request body.
    pub fn encode(self) -> Bytes {
        match self {
            Self::SetConfiguration(c) => Bytes::from(vec![c]),
            Self::SetInterface(i, a) => Bytes::from(vec![i, a]),
            Self::ClearHalt(ep) => Bytes::from(vec![ep]),
            Self::Reset => Bytes::new(),
        }
    }
}

/// Decodes a one-byte status body (configuration and stream replies).
///
/// # Errors
/// [`BodyError`] when not exactly one known status byte.
pub fn decode_status(body: &[u8]) -> Result<TransferStatus, BodyError> {
    match body {
        [b] => TransferStatus::from_u8(*b).ok_or_else(|| bad("status reply", "unknown status")),
        _ => Err(bad("status reply", "need exactly 1 byte")),
    }
}

/// CREDIT body: `bytes u32`.
pub fn decode_credit(body: &[u8]) -> Result<u32, BodyError> {
    <[u8; 4]>::try_from(body)
        .map(u32::from_be_bytes)
        .map_err(|_| bad("CREDIT", "need exactly 4 bytes"))
}

/// STREAM_START body: `endpoint u8 | depth u8 | transfer_size u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    /// IN endpoint (bulk or interrupt).
    pub endpoint: u8,
    /// Transfers kept queued.
    pub depth: u8,
    /// Bytes per transfer.
    pub transfer_size: u32,
}

impl StreamStart {
    /// Encodes the body.
    pub fn encode(self) -> Bytes {
        let mut out = BytesMut::with_capacity(6);
        out.put_u8(self.endpoint);
        out.put_u8(self.depth);
        out.put_u32(self.transfer_size);
        out.freeze()
    }

    /// Decodes the body.
    ///
    /// # Errors
    /// [`BodyError`] when not 6 bytes.
    pub fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let b: [u8; 6] = body
            .try_into()
            .map_err(|_| bad("STREAM_START", "need 6 bytes"))?;
        Ok(Self {
            endpoint: b[0],
            depth: b[1],
            transfer_size: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
        })
    }
}

/// STREAM_DATA body: `status u8 | endpoint u8 | seq u32 | dropped u32 | data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamData {
    /// Completion status of this packet.
    pub status: TransferStatus,
    /// Endpoint.
    pub endpoint: u8,
    /// Sequence number of this completion in the stream.
    pub seq: u32,
    /// Completions dropped so far because the consumer did not keep up.
    pub dropped: u32,
    /// Data.
    pub data: Bytes,
}

impl StreamData {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(10 + self.data.len());
        out.put_u8(self.status as u8);
        out.put_u8(self.endpoint);
        out.put_u32(self.seq);
        out.put_u32(self.dropped);
        out.put_slice(&self.data);
        out.freeze()
    }

    /// Decodes the body.
    ///
    /// # Errors
    /// [`BodyError`] when short or with an unknown status.
    pub fn decode(mut body: Bytes) -> Result<Self, BodyError> {
        if body.len() < 10 {
            return Err(bad("STREAM_DATA", "need at least 10 bytes"));
        }
        let status = TransferStatus::from_u8(body.get_u8())
            .ok_or_else(|| bad("STREAM_DATA", "unknown status"))?;
        Ok(Self {
            status,
            endpoint: body.get_u8(),
            seq: body.get_u32(),
            dropped: body.get_u32(),
            data: body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_out_request_round_trips() {
        let req = TransferRequest {
            kind: TransferKind::Bulk(0x02),
            flags: TransferFlags(TransferFlags::ZERO_PACKET),
            timeout_ms: 500,
            length: 3,
            data: Bytes::from_static(b"abc"),
        };
        let body = req.encode();
        assert_eq!(&body[..10], &[0x02, 0x02, 0, 0, 1, 0xF4, 0, 0, 0, 3]);
        assert_eq!(TransferRequest::decode_endpoint(body, false), Ok(req));
    }

    #[test]
    fn control_in_request_round_trips() {
        let req = TransferRequest {
            kind: TransferKind::Control(Setup::get_device_descriptor()),
            flags: TransferFlags::default(),
            timeout_ms: 0,
            length: 18,
            data: Bytes::new(),
        };
        assert_eq!(TransferRequest::decode_control(req.encode()), Ok(req));
    }

    #[test]
    fn in_request_with_data_is_malformed() {
        let mut body = BytesMut::new();
        body.put_slice(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA]);
        assert!(TransferRequest::decode_endpoint(body.freeze(), false).is_err());
    }

    #[test]
    fn oversize_transfer_length_is_rejected() {
        let body = Bytes::from_static(&[0x81, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        let err = TransferRequest::decode_endpoint(body, false).unwrap_err();
        assert!(err.why.contains("exceeds"));
    }

    #[test]
    fn reply_round_trips_and_rejects_excess_data() {
        let reply = TransferReply {
            status: TransferStatus::Ok,
            actual_length: 2,
            data: Bytes::from_static(b"hi"),
        };
        assert_eq!(TransferReply::decode(reply.encode()), Ok(reply));
        let lying = Bytes::from_static(&[0, 0, 0, 0, 0, 1, b'a', b'b']);
        assert!(TransferReply::decode(lying).is_err());
    }

    #[test]
    fn stream_bodies_round_trip() {
        let s = StreamStart {
            endpoint: 0x81,
            depth: 4,
            transfer_size: 64,
        };
        assert_eq!(StreamStart::decode(&s.encode()), Ok(s));
        let d = StreamData {
            status: TransferStatus::Ok,
            endpoint: 0x81,
            seq: 7,
            dropped: 1,
            data: Bytes::from_static(b"k"),
        };
        assert_eq!(StreamData::decode(d.encode()), Ok(d));
    }

    #[test]
    fn status_and_credit_bodies_are_exact() {
        assert_eq!(decode_status(&[2]), Ok(TransferStatus::Stall));
        assert!(decode_status(&[9]).is_err());
        assert_eq!(decode_credit(&[0, 0, 1, 0]), Ok(256));
        assert!(decode_credit(&[0, 1]).is_err());
    }
}
