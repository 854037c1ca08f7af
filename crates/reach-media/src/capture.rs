//! The [`ScreenCapturer`] trait and the types it hands out: screens, damage, cursor.

use std::time::Duration;

use crate::error::MediaError;
use crate::frame::{Frame, Rect};

/// One monitor the agent can stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenInfo {
    /// Index in [`crate::list_screens`]'s answer; what start-stream selects.
    pub id: u32,
    /// Name the system gives the monitor (e.g. `DP-1`).
    pub name: String,
    /// Left edge in desktop coordinates.
    pub x: i32,
    /// Top edge in desktop coordinates.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether this is the primary monitor.
    pub primary: bool,
}

/// The pointer image, sent separately from video so it moves without re-encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct CursorShape {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Hot spot column.
    pub hot_x: u32,
    /// Hot spot row.
    pub hot_y: u32,
    /// Changes whenever the shape changes; lets viewers cache shapes.
    pub serial: u32,
    /// RGBA pixels, straight (not premultiplied) alpha, `width * height * 4` bytes —
    /// ready for a canvas `ImageData`.
    pub rgba: Vec<u8>,
}

impl std::fmt::Debug for CursorShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CursorShape({}x{} #{})",
            self.width, self.height, self.serial
        )
    }
}

impl CursorShape {
    /// Converts X11/XFixes cursor pixels (ARGB words, premultiplied alpha) to straight RGBA.
    pub fn rgba_from_premultiplied_argb(pixels: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pixels.len() * 4);
        for &p in pixels {
            let [b, g, r, a] = p.to_le_bytes();
            let straight = |c: u8| match a {
                0 => 0,
                255 => c,
                _ => ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8,
            };
            out.extend_from_slice(&[straight(r), straight(g), straight(b), a]);
        }
        out
    }
}

/// Pointer position relative to the captured screen's top-left corner (may lie outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorPosition {
    /// Column.
    pub x: i32,
    /// Row.
    pub y: i32,
}

/// What changed since the previous call to [`ScreenCapturer::wait_update`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureUpdate {
    /// Areas of [`ScreenCapturer::frame`] that were refreshed; empty when no pixel changed.
    pub damage: Vec<Rect>,
    /// New pointer image, when it changed.
    pub cursor_shape: Option<CursorShape>,
    /// New pointer position, when it moved.
    pub cursor_position: Option<CursorPosition>,
}

impl CaptureUpdate {
    /// Whether nothing at all changed.
    pub fn is_empty(&self) -> bool {
        self.damage.is_empty() && self.cursor_shape.is_none() && self.cursor_position.is_none()
    }
}

/// How a capturer reads pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Use shared memory (MIT-SHM on X11) when the server offers it.
    pub use_shared_memory: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            use_shared_memory: true,
        }
    }
}

/// Reads one screen's pixels, driven by change notifications so an idle screen costs
/// nothing. Blocking: run it on a dedicated thread (or `spawn_blocking`).
///
/// The driving loop: [`ScreenCapturer::capture_full`] once (and on keyframe requests),
/// then [`ScreenCapturer::wait_update`] repeatedly, feeding [`ScreenCapturer::frame`] and
/// the update's damage to a [`crate::VideoEncoder`]. Pace by calling no more often than
/// the frame interval: damage accumulates in between, so stale frames are never queued.
pub trait ScreenCapturer: Send {
    /// The screen being captured.
    fn screen(&self) -> &ScreenInfo;

    /// Reads every pixel of the screen now.
    ///
    /// # Errors
    /// [`MediaError::X11`] (or the platform's equivalent) when the display went away.
    fn capture_full(&mut self) -> Result<&Frame, MediaError>;

    /// Waits up to `timeout` for the screen or cursor to change, refreshes the changed
    /// areas of [`ScreenCapturer::frame`] and says what changed. An empty update means
    /// the timeout passed with nothing new. The first update after opening always
    /// carries the current cursor shape and position.
    ///
    /// # Errors
    /// As [`ScreenCapturer::capture_full`].
    fn wait_update(&mut self, timeout: Duration) -> Result<CaptureUpdate, MediaError>;

    /// The latest captured image.
    fn frame(&self) -> &Frame;

    /// Whether pixels are read through shared memory (MIT-SHM) rather than copied
    /// through the socket.
    fn uses_shared_memory(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_argb_cursor_pixels_become_straight_rgba() {
        let pixels = [0xff10_2030, 0x0000_0000, 0x8040_2000];
        let rgba = CursorShape::rgba_from_premultiplied_argb(&pixels);
        assert_eq!(rgba[..4], [0x10, 0x20, 0x30, 0xff]);
        assert_eq!(rgba[4..8], [0, 0, 0, 0]);
        assert_eq!(rgba[8..], [0x80, 0x40, 0x00, 0x80]);
    }
}
