//! [`VideoStream`]: the capture → encode pipeline the agent runs per streamed screen, with
//! fixed-clock frame pacing and the raw fallback built in.
//!
//! Capture (with its pacing) runs on a thread of its own and hands one snapshot at a time to
//! the encoder on the caller's thread, so capturing the next frame overlaps encoding this one.
//! Nothing stale queues: the capture thread is at most one frame ahead, and the caller asks
//! for the next output only once the previous one has left (the socket drained). Meanwhile
//! the X server accumulates damage, so the next capture reads the newest pixels and sends
//! every change once.

mod pacer;
mod pipeline;

use std::time::{Duration, SystemTime};

pub use pacer::FramePacer;
use pipeline::CaptureStage;

use crate::capture::{CaptureOptions, CursorPosition, CursorShape, ScreenCapturer, ScreenInfo};
use crate::codec::{Codec, EncodedFrame, EncoderConfig, FallbackEncoder, VideoEncoder};
use crate::error::MediaError;

/// What to send to the viewers after one step of the stream.
#[derive(Debug, Default)]
pub struct StreamOutput {
    /// An encoded video frame, if pixels changed (or a keyframe was due).
    pub frame: Option<EncodedFrame>,
    /// New cursor image.
    pub cursor_shape: Option<CursorShape>,
    /// New cursor position relative to the screen.
    pub cursor_position: Option<CursorPosition>,
    /// Set once when the chosen codec failed and the stream switched to raw: tell the
    /// viewer (it must expect raw frames from now on).
    pub fell_back_to_raw: Option<MediaError>,
    /// When the pixels of `frame` had been captured (its presentation time).
    pub captured_at: Option<SystemTime>,
}

impl StreamOutput {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.frame.is_none()
            && self.cursor_shape.is_none()
            && self.cursor_position.is_none()
            && self.fell_back_to_raw.is_none()
    }
}

/// Captures one screen and encodes it for the viewers: capture runs on its own thread (see
/// `pipeline`), encoding on the caller's.
pub struct VideoStream {
    stage: CaptureStage,
    encoder: FallbackEncoder,
    screen: ScreenInfo,
}

impl VideoStream {
    /// Opens screen `screen` of `display` and an encoder for `codec` (raw if it fails;
    /// the first [`VideoStream::next_output`] then reports the fallback).
    ///
    /// # Errors
    /// As [`crate::open_capturer`]; [`MediaError::Encoder`] if not even raw can start;
    /// [`MediaError::Io`] if the capture thread cannot start.
    pub fn open(
        display: Option<&str>,
        screen: u32,
        codec: Codec,
        config: &EncoderConfig,
    ) -> Result<Self, MediaError> {
        let capturer = crate::open_capturer(display, screen, CaptureOptions::default())?;
        let reopen = Some((display.map(str::to_owned), screen));
        Self::start(
            capturer,
            FallbackEncoder::new(codec, config)?,
            config.max_fps,
            reopen,
        )
    }

    /// Builds a stream from parts (other capturers, tests); a screen change ends it.
    ///
    /// # Errors
    /// [`MediaError::Io`] if the capture thread cannot start.
    pub fn new(
        capturer: Box<dyn ScreenCapturer>,
        encoder: FallbackEncoder,
        max_fps: f32,
    ) -> Result<Self, MediaError> {
        Self::start(capturer, encoder, max_fps, None)
    }

    fn start(
        capturer: Box<dyn ScreenCapturer>,
        encoder: FallbackEncoder,
        max_fps: f32,
        reopen: Option<(Option<String>, u32)>,
    ) -> Result<Self, MediaError> {
        let screen = capturer.screen().clone();
        let convert = encoder.wants_i420();
        Ok(Self {
            stage: CaptureStage::spawn(capturer, max_fps, reopen, convert)?,
            encoder,
            screen,
        })
    }

    /// The screen being streamed.
    pub fn screen(&self) -> &ScreenInfo {
        &self.screen
    }

    /// The codec frames are currently encoded with.
    pub fn codec(&self) -> Codec {
        self.encoder.codec()
    }

    /// Makes the next output a keyframe from a fresh full capture (viewer joined or
    /// asked for one).
    pub fn request_keyframe(&self) {
        self.stage.request_keyframe();
    }

    /// Waits up to `timeout` for the capture thread (which paces itself to the frame rate)
    /// and returns what to send; an empty output means nothing changed. When the screen
    /// changed size or layout, the capturer was reopened and a keyframe of the new size is
    /// returned.
    ///
    /// # Errors
    /// Capture failures (display gone, screen removed) and raw-encoder failures; codec
    /// failures switch to raw instead.
    pub fn next_output(&mut self, timeout: Duration) -> Result<StreamOutput, MediaError> {
        let Some(captured) = self.stage.next(timeout)? else {
            return Ok(StreamOutput::default());
        };
        if let Some(screen) = captured.screen {
            self.screen = screen;
        }
        let mut out = StreamOutput {
            cursor_shape: captured.cursor_shape,
            cursor_position: captured.cursor_position,
            captured_at: captured.captured_at,
            ..StreamOutput::default()
        };
        if let Some((snapshot, damage)) = captured.picture {
            if damage.is_none() {
                self.encoder.request_keyframe();
            }
            let encoded = match &snapshot.picture {
                Some(picture) => {
                    self.encoder
                        .encode_converted(&snapshot.frame, picture, damage.as_deref())
                }
                None => self.encoder.encode(&snapshot.frame, damage.as_deref()),
            };
            self.stage.recycle(snapshot);
            out.frame = encoded?;
            out.fell_back_to_raw = self.encoder.take_fallback_reason();
            self.stage.set_convert(self.encoder.wants_i420());
        }
        Ok(out)
    }
}
