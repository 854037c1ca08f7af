//! The one error type of this crate: every failure a capturer, encoder, decoder or
//! injector can report, each saying what happened and what to do about it.

/// What went wrong in capture, encoding, decoding or input injection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// No X server could be reached.
    #[error(
        "cannot connect to X display {display:?}: {reason} (is the X server running and DISPLAY set?)"
    )]
    Connect {
        /// The display name tried (`DISPLAY` when empty).
        display: String,
        /// Why the connection failed.
        reason: String,
    },
    /// The X server lacks an extension this backend needs.
    #[error("the X server lacks the {0} extension, which this feature needs")]
    MissingExtension(&'static str),
    /// An X11 request failed or the connection broke.
    #[error("X11 request failed: {0}")]
    X11(String),
    /// The captured screen changed size or layout; reopen the capturer (a
    /// [`crate::VideoStream`] does this itself and sends a keyframe of the new size).
    #[error("the screen changed size or layout; reopen it")]
    ScreenChanged,
    /// The capture thread of a [`crate::VideoStream`] ended unexpectedly.
    #[error("the capture thread stopped")]
    CaptureStopped,
    /// The requested screen (monitor) does not exist.
    #[error("screen {0} does not exist; list the screens and pick one of them")]
    NoSuchScreen(u32),
    /// The X server uses a pixel layout this crate does not convert.
    #[error("unsupported pixel format: {0} (a 24/32-bit TrueColor visual is needed)")]
    PixelFormat(String),
    /// A frame is larger than the limits in [`crate::limits`] or has a zero side.
    #[error("frame of {width}x{height} pixels is outside the supported 1..={max} range per side")]
    FrameSize {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Largest side allowed.
        max: u32,
    },
    /// A codec name that is neither `raw` nor `h264`.
    #[error("unknown video codec {0:?}; use \"raw\" or \"h264\"")]
    UnknownCodec(String),
    /// The video encoder could not start or failed while encoding.
    #[error("video encoder failed: {0}")]
    Encoder(String),
    /// An encoded frame from a peer is malformed; it was dropped and nothing changed.
    #[error("malformed video frame: {0}")]
    Malformed(&'static str),
    /// A `KeyboardEvent.code` value that maps to no physical key.
    #[error("unknown physical key code {0:?} (expected a KeyboardEvent.code such as \"KeyA\")")]
    UnknownKey(String),
    /// Clipboard text over the size cap.
    #[error("clipboard text of {len} bytes exceeds the cap of {max} bytes")]
    ClipboardTooLarge {
        /// Size offered.
        len: usize,
        /// Cap in bytes.
        max: usize,
    },
    /// The clipboard could not be read or written.
    #[error("clipboard: {0}")]
    Clipboard(String),
    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The feature has no backend on this platform yet.
    #[error("{0} is not supported on this platform yet")]
    Unsupported(&'static str),
}
