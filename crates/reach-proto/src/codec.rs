//! Size-capped encode/decode of [`Envelope`]s.
//!
//! The cap is checked on the raw length *before* anything is decoded or allocated.

use crate::v1::{Envelope, envelope::Body};
use prost::Message;

/// Why bytes could not become an [`Envelope`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than the socket allows.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length received.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The bytes are not a valid protobuf envelope.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The envelope carries no body this version knows (dropped, never forwarded).
    #[error("message has no known body")]
    UnknownBody,
}

/// Encodes one envelope.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

/// Decodes one envelope of at most `max` bytes.
///
/// # Errors
/// [`DecodeError::TooLarge`] before any decoding when `bytes.len() > max`,
/// [`DecodeError::Malformed`] for invalid protobuf, [`DecodeError::UnknownBody`] when the
/// body is missing or of a kind this version does not know.
pub fn decode(bytes: &[u8], max: usize) -> Result<Envelope, DecodeError> {
    check_len(bytes.len(), max)?;
    finish(Envelope::decode(bytes))
}

/// Like [`decode`], but payload fields borrow from `bytes` instead of copying.
///
/// # Errors
/// As [`decode`].
pub fn decode_bytes(bytes: bytes::Bytes, max: usize) -> Result<Envelope, DecodeError> {
    check_len(bytes.len(), max)?;
    finish(Envelope::decode(bytes))
}

fn check_len(len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooLarge { len, max });
    }
    Ok(())
}

fn finish(decoded: Result<Envelope, prost::DecodeError>) -> Result<Envelope, DecodeError> {
    let envelope = decoded.map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if envelope.body.is_none() {
        return Err(DecodeError::UnknownBody);
    }
    Ok(envelope)
}

/// Builds an envelope for `session_id` around `body`.
pub fn envelope(session_id: &str, body: Body) -> Envelope {
    Envelope {
        session_id: session_id.to_owned(),
        viewer_id: 0,
        body: Some(body),
    }
}

/// Short stable name of a body kind, for logs and metrics (never the payload).
pub fn body_name(body: &Body) -> &'static str {
    match body {
        Body::AgentAuth(_) => "agent_auth",
        Body::ViewerAuth(_) => "viewer_auth",
        Body::AuthOk(_) => "auth_ok",
        Body::AgentHello(_) => "agent_hello",
        Body::AgentStatus(_) => "agent_status",
        Body::StartStream(_) => "start_stream",
        Body::StopStream(_) => "stop_stream",
        Body::KeyframeRequest(_) => "keyframe_request",
        Body::ConsentRequest(_) => "consent_request",
        Body::ConsentResponse(_) => "consent_response",
        Body::SessionEvent(_) => "session_event",
        Body::VideoFrame(_) => "video_frame",
        Body::CursorShape(_) => "cursor_shape",
        Body::CursorPosition(_) => "cursor_position",
        Body::Pointer(_) => "pointer",
        Body::Wheel(_) => "wheel",
        Body::Key(_) => "key",
        Body::SpecialKey(_) => "special_key",
        Body::Clipboard(_) => "clipboard",
        Body::Usb(_) => "usb",
        Body::UsbAudit(_) => "usb_audit",
        Body::UsbAttachNote(_) => "usb_attach_note",
        Body::Error(_) => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{AGENT_MAX_MESSAGE, VIEWER_MAX_MESSAGE};
    use crate::v1;

    fn key_event() -> Envelope {
        envelope(
            "s1",
            Body::Key(v1::KeyEvent {
                code: "KeyA".into(),
                scancode: 30,
                extended: false,
                modifiers: 0b10,
                down: true,
            }),
        )
    }

    #[test]
    fn a_key_event_survives_a_round_trip() {
        let e = key_event();
        assert_eq!(decode(&encode(&e), VIEWER_MAX_MESSAGE), Ok(e));
    }

    #[test]
    fn a_video_frame_decoded_from_bytes_keeps_its_payload() {
        let frame = envelope(
            "s",
            Body::VideoFrame(v1::VideoFrame {
                codec: v1::VideoCodec::H264.into(),
                keyframe: true,
                bitstream: bytes::Bytes::from(vec![7u8; 100_000]),
                ..Default::default()
            }),
        );
        let raw = bytes::Bytes::from(encode(&frame));
        assert_eq!(decode_bytes(raw, AGENT_MAX_MESSAGE), Ok(frame));
    }

    #[test]
    fn oversize_input_is_refused_before_decoding() {
        let big = vec![0u8; VIEWER_MAX_MESSAGE + 1];
        assert_eq!(
            decode(&big, VIEWER_MAX_MESSAGE),
            Err(DecodeError::TooLarge {
                len: VIEWER_MAX_MESSAGE + 1,
                max: VIEWER_MAX_MESSAGE
            })
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for junk in [&[0xff, 0xff, 0xff][..], &[0x0a, 0x05, b'a'], &[0x52, 0x80]] {
            assert!(matches!(decode(junk, 64), Err(DecodeError::Malformed(_))));
        }
    }

    #[test]
    fn an_empty_envelope_has_no_known_body() {
        assert_eq!(decode(&[], 64), Err(DecodeError::UnknownBody));
    }

    #[test]
    fn random_and_truncated_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..20_000 {
            let len = rng.random_range(0..256);
            let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = decode(&junk, VIEWER_MAX_MESSAGE);
        }
        let valid = encode(&key_event());
        for cut in 0..valid.len() {
            let _ = decode(&valid[..cut], VIEWER_MAX_MESSAGE);
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut bytes = encode(&key_event());
        // Field 999, varint 1: a field a later version might add.
        bytes.extend_from_slice(&[0xb8, 0x3e, 0x01]);
        assert_eq!(decode(&bytes, 64), Ok(key_event()));
    }
}
