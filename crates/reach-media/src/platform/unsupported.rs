//! Placeholder backend for systems without capture and input support yet.

use crate::{CaptureOptions, Clipboard, InputInjector, MediaError, ScreenCapturer, ScreenInfo};

pub(crate) fn list_screens(_: Option<&str>) -> Result<Vec<ScreenInfo>, MediaError> {
    Err(MediaError::Unsupported("screen capture"))
}

pub(crate) fn open_capturer(
    _: Option<&str>,
    _: u32,
    _: CaptureOptions,
) -> Result<Box<dyn ScreenCapturer>, MediaError> {
    Err(MediaError::Unsupported("screen capture"))
}

pub(crate) fn open_injector(_: Option<&str>, _: u32) -> Result<Box<dyn InputInjector>, MediaError> {
    Err(MediaError::Unsupported("input injection"))
}

pub(crate) fn open_clipboard(_: Option<&str>) -> Result<Box<dyn Clipboard>, MediaError> {
    Err(MediaError::Unsupported("clipboard"))
}

pub(crate) fn run_media_bench(
    _: &crate::bench::BenchOptions,
) -> Result<Vec<crate::bench::BenchRow>, MediaError> {
    Err(MediaError::Unsupported("the media benchmark"))
}
