//! Codec names, negotiation, the [`VideoEncoder`] trait and the factory that builds
//! encoders from a codec name.

use std::str::FromStr;

use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::limits::DEFAULT_BITRATE_BPS;
use crate::yuv::I420;

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

/// One encoded frame ready to be put on the wire (maps 1:1 onto the protocol's
/// `VideoFrame`: `tiles` → `tiles`, `bitstream` → `bitstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The codec that produced the frame.
    pub codec: Codec,
    /// Whether a decoder can start from this frame (raw: every pixel is in `tiles`).
    pub keyframe: bool,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// H.264: the Annex-B access unit. Empty for raw.
    pub bitstream: Vec<u8>,
    /// Raw: content moves to apply to the viewer's canvas, in order, before the tiles.
    pub copies: Vec<CopyRect>,
    /// Raw: changed rectangles, each its own zstd frame of BGRA rows (alpha 255).
    pub tiles: Vec<EncodedTile>,
    /// Browser codec string for WebCodecs, e.g. `avc1.42C028` (h264 only).
    pub codec_string: Option<String>,
}

impl EncodedFrame {
    /// Encoded payload size in bytes (bitstream plus tile data).
    pub fn byte_len(&self) -> usize {
        self.bitstream.len() + self.tiles.iter().map(|t| t.zstd_bgra.len()).sum::<usize>()
    }

    /// The areas this frame changes: copy destinations and tiles (h264: the whole frame).
    pub fn changed_rects(&self) -> Vec<Rect> {
        if self.codec == Codec::H264 {
            return vec![Rect::new(0, 0, self.width, self.height)];
        }
        let copies = self
            .copies
            .iter()
            .map(|c| Rect::new(c.dst_x, c.dst_y, c.src.width, c.src.height));
        copies.chain(self.tiles.iter().map(|t| t.rect)).collect()
    }
}

/// Move the pixels of `src` on the canvas so its top-left corner lands at
/// `(dst_x, dst_y)`; source and destination may overlap (like `memmove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRect {
    /// Source area on the canvas before the move.
    pub src: Rect,
    /// Destination column.
    pub dst_x: u32,
    /// Destination row.
    pub dst_y: u32,
}

/// One raw tile: `rect`'s BGRA rows, top to bottom, compressed as one zstd frame.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedTile {
    /// Where the pixels go.
    pub rect: Rect,
    /// zstd frame of `rect.width * rect.height * 4` bytes.
    pub zstd_bgra: Vec<u8>,
}

impl std::fmt::Debug for EncodedTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncodedTile({:?}, {} bytes)",
            self.rect,
            self.zstd_bgra.len()
        )
    }
}

/// Settings every encoder accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second (H.264 rate control).
    pub target_bitrate_bps: u32,
    /// Highest frame rate the caller will feed.
    pub max_fps: f32,
    /// Raw codec: send vertical content moves as [`CopyRect`]s (the protocol's
    /// `VideoFrame.copies`). On by default; turn it off for viewers that cannot apply copies.
    pub detect_scroll: bool,
    /// H.264: send small changes (typing, a blinking cursor) as raw tiles inside the H.264
    /// stream ([`crate::MixedEncoder`]). On by default; off gives plain H.264.
    pub raw_small_changes: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            target_bitrate_bps: DEFAULT_BITRATE_BPS,
            max_fps: 60.0,
            detect_scroll: true,
            raw_small_changes: true,
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

    /// As [`VideoEncoder::encode`], with `picture`: `frame` already converted to I420 (by the
    /// capture stage of a [`crate::VideoStream`], off the encoder's thread). Encoders that do
    /// not use I420 ignore it.
    ///
    /// # Errors
    /// As [`VideoEncoder::encode`].
    fn encode_converted(
        &mut self,
        frame: &Frame,
        picture: &I420,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let _ = picture;
        self.encode(frame, damage)
    }

    /// Whether [`VideoEncoder::encode_converted`] uses the I420 picture (worth converting
    /// ahead).
    fn wants_i420(&self) -> bool {
        false
    }
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
        Codec::Raw => Ok(Box::new(crate::raw::RawEncoder::with_scroll_detection(
            config.detect_scroll,
        )?)),
        Codec::H264 if config.raw_small_changes => {
            Ok(Box::new(crate::mixed::MixedEncoder::new(config)?))
        }
        Codec::H264 => Ok(Box::new(crate::h264::H264Encoder::new(config)?)),
    }
}

/// An encoder that switches to raw for good when its codec fails to start or to encode,
/// and keeps the failure for the caller to tell the viewer.
pub struct FallbackEncoder {
    active: Box<dyn VideoEncoder>,
    config: EncoderConfig,
    fallback_reason: Option<MediaError>,
}

impl FallbackEncoder {
    /// Tries `codec`; on failure starts with raw and records why.
    ///
    /// # Errors
    /// Only when even the raw encoder cannot start.
    pub fn new(codec: Codec, config: &EncoderConfig) -> Result<Self, MediaError> {
        match create_encoder(codec, config) {
            Ok(active) => Ok(Self::wrap(active, config)),
            Err(err) => {
                tracing::warn!(%codec, error = %err, "video encoder unavailable, using raw");
                Ok(Self {
                    active: create_encoder(Codec::Raw, config)?,
                    config: *config,
                    fallback_reason: Some(err),
                })
            }
        }
    }

    /// Wraps an existing encoder; `config` is used for the raw fallback.
    pub fn wrap(active: Box<dyn VideoEncoder>, config: &EncoderConfig) -> Self {
        Self {
            active,
            config: *config,
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
                self.active = create_encoder(Codec::Raw, &self.config)?;
                self.active.encode(frame, None)
            }
            Err(err) => Err(err),
        }
    }

    fn request_keyframe(&mut self) {
        self.active.request_keyframe();
    }

    fn encode_converted(
        &mut self,
        frame: &Frame,
        picture: &I420,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        match self.active.encode_converted(frame, picture, damage) {
            Ok(out) => Ok(out),
            Err(err) if self.active.codec() != Codec::Raw => {
                tracing::warn!(error = %err, "video encoder failed, switching to raw");
                self.fallback_reason = Some(err);
                self.active = create_encoder(Codec::Raw, &self.config)?;
                self.active.encode(frame, None)
            }
            Err(err) => Err(err),
        }
    }

    fn wants_i420(&self) -> bool {
        self.active.wants_i420()
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
        let mut encoder = FallbackEncoder::wrap(Box::new(BrokenEncoder), &EncoderConfig::default());
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
