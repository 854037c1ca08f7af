//! Screen capture, video encoding and input injection for the Reach agent.
//!
//! The agent opens a [`ScreenCapturer`] for the screen a viewer selected, feeds its
//! frames and damage to a [`VideoEncoder`] built by [`create_encoder`] (or the
//! [`FallbackEncoder`] that drops to raw on failure) for the codec
//! [`select_video_codec`] picked, and plays viewer input through an [`InputInjector`].
//!
//! # Layout
//! - `frame`: [`Frame`] (BGRA) and [`Rect`];
//! - `capture`, `input`, `codec`: the traits and their value types;
//! - `stream`: [`VideoStream`], the paced capture → encode pipeline;
//! - `raw`: lossless dirty tiles + zstd, with scroll detection, and its decoder;
//! - `h264`: openh264 encoder; `yuv`: BGRA → I420;
//! - `mixed`: H.264 for motion with small changes as raw tiles, in one stream;
//! - `platform`: the OS backends (X11 on Linux), chosen in one place;
//! - [`limits`]: every size bound; [`mod@bench`]: `reach bench media`.
//!
//! # Example
//! The agent's streaming thread (blocking; one per streamed screen):
//! ```no_run
//! use std::time::Duration;
//! use reach_media::{CodecPreference, EncoderConfig, VideoStream};
//!
//! let codec = reach_media::select_video_codec(reach_media::supports_h264(), CodecPreference::Auto);
//! let mut stream = VideoStream::open(None, 0, codec, &EncoderConfig::default())?;
//! loop {
//!     // Ask for the next output only once the previous one was sent: no stale queue.
//!     let out = stream.next_output(Duration::from_millis(250))?;
//!     if let Some(frame) = out.frame {
//!         // send frame.data with frame.codec / frame.keyframe / frame.codec_string
//!     }
//!     // on a viewer join or keyframe request: stream.request_keyframe();
//! }
//! # Ok::<(), reach_media::MediaError>(())
//! ```
//!
//! Capturers and encoders can also be driven separately: [`open_capturer`],
//! [`ScreenCapturer::wait_update`], [`create_encoder`], [`VideoEncoder::encode`].
#![warn(missing_docs)]

pub mod bench;
mod capture;
mod codec;
mod error;
mod frame;
mod h264;
mod input;
pub mod limits;
mod mixed;
mod platform;
mod raw;
mod stream;
mod virtual_display;
mod yuv;

pub use capture::{
    CaptureOptions, CaptureUpdate, CursorPosition, CursorShape, ScreenCapturer, ScreenInfo,
};
pub use codec::{
    Codec, CodecPreference, CopyRect, EncodedFrame, EncodedTile, EncoderConfig, FallbackEncoder,
    VideoEncoder, create_encoder, select_video_codec,
};
pub use error::MediaError;
pub use frame::{Frame, Rect};
pub use h264::{H264Encoder, codec_string_from_annexb};
pub use input::{
    Clipboard, InputInjector, PointerButton, SpecialKey, WheelAccumulator, evdev_code, paste_text,
    scale_point,
};
pub use mixed::{MixedEncoder, RAW_BUDGET_BYTES_PER_SEC, SMALL_CHANGE_PIXELS};
pub use raw::{RawDecoder, RawEncoder};
pub use stream::{FramePacer, StreamOutput, VideoStream};
pub use virtual_display::VirtualDisplay;
pub use yuv::{I420, bgra_to_i420};

/// Whether this build can encode H.264 (what the agent advertises as `supports_h264`).
pub const fn supports_h264() -> bool {
    true
}

/// The screens (monitors) of the display, in the order their ids refer to.
///
/// `display` is the X display name on Linux (`None` = `$DISPLAY`).
///
/// # Errors
/// [`MediaError::Connect`] when the display cannot be reached.
pub fn list_screens(display: Option<&str>) -> Result<Vec<ScreenInfo>, MediaError> {
    platform::list_screens(display)
}

/// Opens a capturer for screen `screen` (an id from [`list_screens`]).
///
/// # Errors
/// [`MediaError::Connect`], [`MediaError::NoSuchScreen`], [`MediaError::MissingExtension`],
/// [`MediaError::PixelFormat`].
pub fn open_capturer(
    display: Option<&str>,
    screen: u32,
    options: CaptureOptions,
) -> Result<Box<dyn ScreenCapturer>, MediaError> {
    platform::open_capturer(display, screen, options)
}

/// Opens an input injector whose coordinates are those of screen `screen`.
///
/// # Errors
/// [`MediaError::Connect`], [`MediaError::NoSuchScreen`], [`MediaError::MissingExtension`].
pub fn open_injector(
    display: Option<&str>,
    screen: u32,
) -> Result<Box<dyn InputInjector>, MediaError> {
    platform::open_injector(display, screen)
}

/// Opens the clipboard of the display.
///
/// # Errors
/// [`MediaError::Connect`], [`MediaError::MissingExtension`].
pub fn open_clipboard(display: Option<&str>) -> Result<Box<dyn Clipboard>, MediaError> {
    platform::open_clipboard(display)
}
