//! The X11 backend: capture (MIT-SHM or GetImage, DAMAGE-driven), XTEST input and the
//! CLIPBOARD selection, all over pure-Rust x11rb connections.

mod bench;
mod capture;
mod clipboard;
mod grab;
mod input;
mod screens;

use std::os::fd::AsFd;
use std::time::Duration;

use x11rb::connection::RequestConnection;
use x11rb::rust_connection::RustConnection;

use crate::{CaptureOptions, Clipboard, InputInjector, MediaError, ScreenCapturer};

pub(crate) use bench::run_media_bench;
pub(crate) use screens::list_screens;

pub(crate) fn open_capturer(
    display: Option<&str>,
    screen: u32,
    options: CaptureOptions,
) -> Result<Box<dyn ScreenCapturer>, MediaError> {
    Ok(Box::new(capture::X11Capturer::open(
        display, screen, options,
    )?))
}

pub(crate) fn open_injector(
    display: Option<&str>,
    screen: u32,
) -> Result<Box<dyn InputInjector>, MediaError> {
    Ok(Box::new(input::XTestInjector::open(display, screen)?))
}

pub(crate) fn open_clipboard(display: Option<&str>) -> Result<Box<dyn Clipboard>, MediaError> {
    Ok(Box::new(clipboard::X11Clipboard::open(display)?))
}

/// An X connection and the index of its default screen.
pub(crate) fn connect(display: Option<&str>) -> Result<(RustConnection, usize), MediaError> {
    x11rb::connect(display).map_err(|e| MediaError::Connect {
        display: display.unwrap_or("").to_owned(),
        reason: e.to_string(),
    })
}

/// Maps any x11rb error into ours, once, at the boundary.
pub(crate) fn x11<E: std::fmt::Display>(err: E) -> MediaError {
    MediaError::X11(err.to_string())
}

/// Fails with [`MediaError::MissingExtension`] unless the server has `name`.
pub(crate) fn require_extension(
    conn: &RustConnection,
    name: &'static str,
) -> Result<(), MediaError> {
    match conn.extension_information(name).map_err(x11)? {
        Some(_) => Ok(()),
        None => Err(MediaError::MissingExtension(name)),
    }
}

/// Blocks until the connection has bytes to read or `timeout` passes.
///
/// Call only after `poll_for_event` returned `None`, so no event sits in x11rb's buffer.
pub(crate) fn wait_readable(conn: &RustConnection, timeout: Duration) -> Result<(), MediaError> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let fd = conn.stream().as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(MediaError::Io(e.into())),
    }
}

/// Flushes queued requests and waits for the server to have processed them, so other
/// clients observe their effects from then on.
pub(crate) fn sync(conn: &RustConnection) -> Result<(), MediaError> {
    use x11rb::protocol::xproto::ConnectionExt as _;
    conn.get_input_focus().map_err(x11)?.reply().map_err(x11)?;
    Ok(())
}
