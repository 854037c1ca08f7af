//! Lists monitors with RandR 1.5 (falling back to the whole root window).

use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::{connect, x11};
use crate::{MediaError, ScreenInfo};

pub(crate) fn list_screens(display: Option<&str>) -> Result<Vec<ScreenInfo>, MediaError> {
    let (conn, screen_num) = connect(display)?;
    screens_of(&conn, screen_num)
}

/// The monitors of the X screen `screen_num`, the whole root window if RandR has none.
pub(crate) fn screens_of(
    conn: &RustConnection,
    screen_num: usize,
) -> Result<Vec<ScreenInfo>, MediaError> {
    let root = &conn.setup().roots[screen_num];
    // The current size: the setup block only knows the size at connection time.
    let geometry = conn
        .get_geometry(root.root)
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    let whole = ScreenInfo {
        id: 0,
        name: "screen".to_owned(),
        x: 0,
        y: 0,
        width: u32::from(geometry.width),
        height: u32::from(geometry.height),
        primary: true,
    };
    if super::require_extension(conn, x11rb::protocol::randr::X11_EXTENSION_NAME).is_err() {
        return Ok(vec![whole]);
    }
    let version = conn
        .randr_query_version(1, 5)
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    if (version.major_version, version.minor_version) < (1, 5) {
        return Ok(vec![whole]);
    }
    let reply = conn
        .randr_get_monitors(root.root, true)
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    let mut screens = Vec::with_capacity(reply.monitors.len());
    for (id, monitor) in reply.monitors.iter().enumerate() {
        // Clip to the root window: after a shrink, outputs can outlast the framebuffer.
        let (x, y) = (i32::from(monitor.x).max(0), i32::from(monitor.y).max(0));
        let right = (i32::from(monitor.x) + i32::from(monitor.width)).min(whole.width as i32);
        let bottom = (i32::from(monitor.y) + i32::from(monitor.height)).min(whole.height as i32);
        if right <= x || bottom <= y {
            continue;
        }
        screens.push(ScreenInfo {
            id: id as u32,
            name: atom_name(conn, monitor.name).unwrap_or_else(|| format!("monitor-{id}")),
            x,
            y,
            width: (right - x) as u32,
            height: (bottom - y) as u32,
            primary: monitor.primary,
        });
    }
    if screens.is_empty() {
        screens.push(whole);
    }
    Ok(screens)
}

/// The screen with `id`.
pub(crate) fn find_screen(
    conn: &RustConnection,
    screen_num: usize,
    id: u32,
) -> Result<ScreenInfo, MediaError> {
    screens_of(conn, screen_num)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(MediaError::NoSuchScreen(id))
}

fn atom_name(conn: &RustConnection, atom: u32) -> Option<String> {
    let reply = conn.get_atom_name(atom).ok()?.reply().ok()?;
    String::from_utf8(reply.name).ok()
}
