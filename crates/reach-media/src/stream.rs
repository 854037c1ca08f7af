//! [`VideoStream`]: the capture → encode loop the agent runs per streamed screen, with
//! frame pacing and the raw fallback built in.
//!
//! Pacing never queues stale frames: the caller asks for the next output only once the
//! previous one has left (the socket drained). Meanwhile the X server accumulates
//! damage, so the next capture reads the newest pixels and sends every change once.

use std::time::{Duration, Instant};

use crate::capture::{CaptureOptions, CursorPosition, CursorShape, ScreenCapturer, ScreenInfo};
use crate::codec::{Codec, EncodedFrame, EncoderConfig, FallbackEncoder, VideoEncoder};
use crate::error::MediaError;
use crate::frame::Rect;

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

/// Spaces frames at least one interval apart (sans-IO: time is passed in).
#[derive(Debug, Clone, Copy)]
pub struct FramePacer {
    interval: Duration,
    last: Option<Instant>,
}

impl FramePacer {
    /// A pacer for at most `max_fps` frames per second (clamped to 1..=240).
    pub fn new(max_fps: f32) -> Self {
        Self {
            interval: Duration::from_secs_f32(1.0 / max_fps.clamp(1.0, 240.0)),
            last: None,
        }
    }

    /// How long to wait at `now` before the next frame may be captured.
    pub fn delay(&self, now: Instant) -> Duration {
        self.last
            .map(|last| (last + self.interval).saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// Records that a frame was produced at `now`.
    pub fn handle_frame_sent(&mut self, now: Instant) {
        self.last = Some(now);
    }
}

/// Captures one screen and encodes it for the viewers.
pub struct VideoStream {
    capturer: Box<dyn ScreenCapturer>,
    encoder: FallbackEncoder,
    pacer: FramePacer,
    keyframe_due: bool,
    /// Display and screen id to reopen after a size or layout change.
    reopen: Option<(Option<String>, u32)>,
}

/// Reopens after a screen change at most this many times in a row.
const MAX_REOPENS: usize = 3;

impl VideoStream {
    /// Opens screen `screen` of `display` and an encoder for `codec` (raw if it fails;
    /// the first [`VideoStream::next_output`] then reports the fallback).
    ///
    /// # Errors
    /// As [`crate::open_capturer`]; [`MediaError::Encoder`] if not even raw can start.
    pub fn open(
        display: Option<&str>,
        screen: u32,
        codec: Codec,
        config: &EncoderConfig,
    ) -> Result<Self, MediaError> {
        let capturer = crate::open_capturer(display, screen, CaptureOptions::default())?;
        let mut stream = Self::new(
            capturer,
            FallbackEncoder::new(codec, config)?,
            config.max_fps,
        );
        stream.reopen = Some((display.map(str::to_owned), screen));
        Ok(stream)
    }

    /// Builds a stream from parts (other capturers, tests).
    pub fn new(capturer: Box<dyn ScreenCapturer>, encoder: FallbackEncoder, max_fps: f32) -> Self {
        Self {
            capturer,
            encoder,
            pacer: FramePacer::new(max_fps),
            keyframe_due: true,
            reopen: None,
        }
    }

    /// The screen being streamed.
    pub fn screen(&self) -> &ScreenInfo {
        self.capturer.screen()
    }

    /// The codec frames are currently encoded with.
    pub fn codec(&self) -> Codec {
        self.encoder.codec()
    }

    /// Makes the next output a keyframe from a fresh full capture (viewer joined or
    /// asked for one).
    pub fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    /// Waits (paced to the frame rate, at most `timeout` for a change) and returns what
    /// to send; an empty output means nothing changed. When the screen changed size or
    /// layout, the capturer is reopened and a keyframe of the new size is returned.
    ///
    /// # Errors
    /// Capture failures (display gone, screen removed) and raw-encoder failures; codec
    /// failures switch to raw instead.
    pub fn next_output(&mut self, timeout: Duration) -> Result<StreamOutput, MediaError> {
        let mut reopens = 0;
        loop {
            match self.step(timeout) {
                Err(MediaError::ScreenChanged) if reopens < MAX_REOPENS => {
                    let Some((display, screen)) = &self.reopen else {
                        return Err(MediaError::ScreenChanged);
                    };
                    tracing::info!(screen, "screen changed, reopening the capturer");
                    let options = CaptureOptions::default();
                    self.capturer = crate::open_capturer(display.as_deref(), *screen, options)?;
                    self.keyframe_due = true;
                    reopens += 1;
                }
                other => return other,
            }
        }
    }

    fn step(&mut self, timeout: Duration) -> Result<StreamOutput, MediaError> {
        let delay = self.pacer.delay(Instant::now());
        if !delay.is_zero() {
            // Pacing, not synchronisation: changes meanwhile coalesce in the X server.
            std::thread::sleep(delay);
        }
        let mut out = StreamOutput::default();
        let damage: Option<Vec<Rect>> = if self.keyframe_due {
            self.capturer.capture_full()?;
            self.encoder.request_keyframe();
            self.keyframe_due = false;
            None
        } else {
            let update = self.capturer.wait_update(timeout)?;
            out.cursor_shape = update.cursor_shape;
            out.cursor_position = update.cursor_position;
            if update.damage.is_empty() {
                return Ok(out);
            }
            Some(update.damage)
        };
        out.frame = self
            .encoder
            .encode(self.capturer.frame(), damage.as_deref())?;
        out.fell_back_to_raw = self.encoder.take_fallback_reason();
        if out.frame.is_some() {
            self.pacer.handle_frame_sent(Instant::now());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_spaces_frames_one_interval_apart() {
        let mut pacer = FramePacer::new(50.0);
        let t0 = Instant::now();
        assert_eq!(pacer.delay(t0), Duration::ZERO);
        pacer.handle_frame_sent(t0);
        assert_eq!(
            pacer.delay(t0 + Duration::from_millis(5)),
            Duration::from_millis(15)
        );
        assert_eq!(pacer.delay(t0 + Duration::from_millis(25)), Duration::ZERO);
    }
}
