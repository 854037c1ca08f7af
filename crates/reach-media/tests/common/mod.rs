//! Test harness: a private Xvfb per test and small X client helpers to draw and observe.
#![allow(dead_code, unreachable_pub)]

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{ChangeGCAux, ConnectionExt as _, Rectangle, Window};
use x11rb::rust_connection::RustConnection;

/// A private X server, killed on drop.
pub struct Xvfb {
    display: reach_media::VirtualDisplay,
}

impl Xvfb {
    /// Starts Xvfb on a free display (it picks the number and reports it when ready).
    pub fn start(width: u32, height: u32) -> Self {
        let display =
            reach_media::VirtualDisplay::start(width, height).unwrap_or_else(|e| panic!("{e}"));
        Self { display }
    }

    /// The display name, e.g. `:3`.
    pub fn display(&self) -> &str {
        self.display.name()
    }

    /// A client connection and its root window.
    pub fn client(&self) -> (RustConnection, Window) {
        let (conn, screen) = x11rb::connect(Some(self.display())).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        (conn, root)
    }
}

/// Fills `rects` of `drawable` with the 0xRRGGBB colour and waits until the server did it.
pub fn fill(conn: &RustConnection, drawable: Window, rgb: u32, rects: &[Rectangle]) {
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, drawable, &Default::default()).unwrap();
    conn.change_gc(gc, &ChangeGCAux::new().foreground(rgb))
        .unwrap();
    conn.poly_fill_rectangle(drawable, gc, rects).unwrap();
    conn.free_gc(gc).unwrap();
    sync(conn);
}

/// A rectangle in X's types.
pub fn rect(x: i16, y: i16, width: u16, height: u16) -> Rectangle {
    Rectangle {
        x,
        y,
        width,
        height,
    }
}

/// Waits until the server processed every request sent so far.
pub fn sync(conn: &RustConnection) {
    conn.get_input_focus().unwrap().reply().unwrap();
}

/// Waits up to `timeout` for an event `pick` accepts; panics with `what` otherwise.
pub fn wait_for<T>(
    conn: &RustConnection,
    what: &str,
    timeout: Duration,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        while let Some(event) = conn.poll_for_event().unwrap() {
            if let Some(found) = pick(&event) {
                return found;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let fd = conn.stream().as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
    }
}

/// BGRA bytes of a 0xRRGGBB colour as captured (alpha not compared).
pub fn bgr(rgb: u32) -> [u8; 3] {
    [rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8]
}
