//! Codec names, negotiation, the [`VideoEncoder`] trait and the factory that builds
//! encoders from a codec name.

use std::str::FromStr;

use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::limits::DEFAULT_BITRATE_BPS;

/// A video codec the agent can stream with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Dirty BGRA tiles, zstd-compressed; always available, lossless.
    Raw,
    /// H.264 Constrained Baseline (openh264), Annex-B.
    H264,
}

impl Codec {
    /// The wire name: `"raw"` or `"h264"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::H264 => "h264",
        }
    }
}

impl FromStr for Codec {
    type Err = MediaError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "raw" => Ok(Self::Raw),
            "h264" => Ok(Self::H264),
            other => Err(MediaError::UnknownCodec(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the viewer or operator would like; the agent's capabilities decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CodecPreference {
    /// The best codec the agent supports.
    #[default]
    Auto,
    /// Lossless raw tiles even when H.264 is available.
    Raw,
    /// H.264 when the agent supports it, raw otherwise.
    H264,
}

/// Picks the codec to stamp on start-stream.
///
/// | supports_h264 | prefer | result |
/// |---|---|---|
/// | true | Auto or H264 | H264 |
/// | true | Raw | Raw |
/// | false | any | Raw |
pub fn select_video_codec(supports_h264: bool, prefer: CodecPreference) -> Codec {
    match (supports_h264, prefer) {
        (true, CodecPreference::Auto | CodecPreference::H264) => Codec::H264,
        (_, CodecPreference::Raw) | (false, _) => Codec::Raw,
    }
}

/// One encoded frame ready to be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The codec that produced `data`.
    pub codec: Codec,
    /// Whether a decoder can start from this frame.
    pub keyframe: bool,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// The encoded bytes (raw: see `docs/media.md`; h264: Annex-B access unit).
    pub data: Vec<u8>,
    /// Areas that changed (raw: the tiles and copy destinations sent; h264: whole frame).
    pub rects: Vec<Rect>,
    /// Browser codec string for WebCodecs, e.g. `avc1.42C028` (h264 only).
    pub codec_string: Option<String>,
}

/// Settings every encoder accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second (H.264 rate control).
    pub target_bitrate_bps: u32,
    /// Highest frame rate the caller will feed.
    pub max_fps: f32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            target_bitrate_bps: DEFAULT_BITRATE_BPS,
            max_fps: 60.0,
        }
    }
}

/// Turns captured frames into bytes for the wire.
///
/// Every encoder starts with a keyframe and after [`VideoEncoder::request_keyframe`]
/// emits one on the next call, so a new viewer never gets an inter frame first.
pub trait VideoEncoder: Send {
    /// The codec this encoder produces.
    fn codec(&self) -> Codec;

    /// Encodes `frame`. `damage` names the areas that changed since the previous call
    /// (`None` = unknown, compare everything). Returns `None` when nothing needs sending.
    ///
    /// # Errors
    /// [`MediaError::Encoder`] when the codec fails; the caller should fall back to raw
    /// (see [`FallbackEncoder`]).
    fn encode(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError>;

    /// Makes the next [`VideoEncoder::encode`] emit a keyframe.
    fn request_keyframe(&mut self);
}

/// Builds an encoder for `codec`.
///
/// # Errors
/// [`MediaError::Encoder`] when the codec cannot start (then use raw).
pub fn create_encoder(
    codec: Codec,
    config: &EncoderConfig,
) -> Result<Box<dyn VideoEncoder>, MediaError> {
    match codec {
        Codec::Raw => Ok(Box::new(crate::raw::RawEncoder::new())),
        Codec::H264 => Ok(Box::new(crate::h264::H264Encoder::new(config)?)),
    }
}

/// An encoder that switches to raw for good when its codec fails to start or to encode,
/// and keeps the failure for the caller to tell the viewer.
pub struct FallbackEncoder {
    active: Box<dyn VideoEncoder>,
    fallback_reason: Option<MediaError>,
}

impl FallbackEncoder {
    /// Tries `codec`; on failure starts with raw and records why.
    pub fn new(codec: Codec, config: &EncoderConfig) -> Self {
        match create_encoder(codec, config) {
            Ok(active) => Self::wrap(active),
            Err(err) => {
                tracing::warn!(%codec, error = %err, "video encoder unavailable, using raw");
                Self {
                    active: Box::new(crate::raw::RawEncoder::new()),
                    fallback_reason: Some(err),
                }
            }
        }
    }

    /// Wraps an existing encoder.
    pub fn wrap(active: Box<dyn VideoEncoder>) -> Self {
        Self {
            active,
            fallback_reason: None,
        }
    }

    /// Why the encoder fell back to raw, once; `None` if it has not (or was already told).
    pub fn take_fallback_reason(&mut self) -> Option<MediaError> {
        self.fallback_reason.take()
    }
}

impl VideoEncoder for FallbackEncoder {
    fn codec(&self) -> Codec {
        self.active.codec()
    }

    fn encode(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        match self.active.encode(frame, damage) {
            Ok(out) => Ok(out),
            Err(err) if self.active.codec() != Codec::Raw => {
                tracing::warn!(error = %err, "video encoder failed, switching to raw");
                self.fallback_reason = Some(err);
                self.active = Box::new(crate::raw::RawEncoder::new());
                self.active.encode(frame, None)
            }
            Err(err) => Err(err),
        }
    }

    fn request_keyframe(&mut self) {
        self.active.request_keyframe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_selection_follows_the_truth_table() {
        use CodecPreference::{Auto, H264, Raw};
        let table = [
            (true, Auto, Codec::H264),
            (true, H264, Codec::H264),
            (true, Raw, Codec::Raw),
            (false, Auto, Codec::Raw),
            (false, H264, Codec::Raw),
            (false, Raw, Codec::Raw),
        ];
        for (supports, prefer, expected) in table {
            assert_eq!(
                select_video_codec(supports, prefer),
                expected,
                "{supports} {prefer:?}"
            );
        }
    }

    #[test]
    fn codec_names_round_trip_and_unknown_names_are_refused() {
        for codec in [Codec::Raw, Codec::H264] {
            assert_eq!(codec.as_str().parse::<Codec>().unwrap(), codec);
        }
        assert!(matches!(
            "vp9".parse::<Codec>(),
            Err(MediaError::UnknownCodec(_))
        ));
    }

    struct BrokenEncoder;

    impl VideoEncoder for BrokenEncoder {
        fn codec(&self) -> Codec {
            Codec::H264
        }
        fn encode(
            &mut self,
            _: &Frame,
            _: Option<&[Rect]>,
        ) -> Result<Option<EncodedFrame>, MediaError> {
            Err(MediaError::Encoder("forced failure".into()))
        }
        fn request_keyframe(&mut self) {}
    }

    #[test]
    fn an_encoder_failing_at_runtime_falls_back_to_a_raw_keyframe() {
        let mut encoder = FallbackEncoder::wrap(Box::new(BrokenEncoder));
        let frame = Frame::new(100, 70).unwrap();
        let out = encoder.encode(&frame, None).unwrap().unwrap();
        assert_eq!(out.codec, Codec::Raw);
        assert!(out.keyframe);
        assert_eq!(encoder.codec(), Codec::Raw);
        assert!(matches!(
            encoder.take_fallback_reason(),
            Some(MediaError::Encoder(_))
        ));
        assert!(encoder.take_fallback_reason().is_none());
    }
}
