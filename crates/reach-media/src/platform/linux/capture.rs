//! [`X11Capturer`]: one monitor of an X screen, refreshed only where DAMAGE reports
//! changes; cursor shape from XFixes, position from XInput2 raw motion + QueryPointer.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::xfixes::{self, ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::xinput::{self, ConnectionExt as _, XIEventMask};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::grab::Grabber;
use super::{connect, require_extension, wait_readable, x11};
use crate::limits::MAX_CURSOR_SIDE;
use crate::{
    CaptureOptions, CaptureUpdate, CursorPosition, CursorShape, Frame, MediaError, Rect,
    ScreenCapturer, ScreenInfo,
};

/// More damage rectangles than this are merged into their bounding box.
const MAX_DAMAGE_RECTS: usize = 64;

/// Captures one monitor of an X display.
pub(crate) struct X11Capturer {
    conn: RustConnection,
    root: Window,
    screen: ScreenInfo,
    grabber: Grabber,
    frame: Frame,
    damage: damage::Damage,
    region: xfixes::Region,
    cursor_serial: Option<u32>,
    cursor_position: Option<CursorPosition>,
    /// Whether the first update (with the initial cursor) was handed out.
    announced: bool,
    screen_num: usize,
}

/// Which kinds of change the drained events announced.
#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    damaged: bool,
    cursor_changed: bool,
    pointer_moved: bool,
    /// First update: report the cursor even if nothing changed.
    initial: bool,
    /// The root window was resized or RandR reconfigured.
    layout_changed: bool,
}

impl Pending {
    fn any(&self) -> bool {
        self.damaged || self.cursor_changed || self.pointer_moved || self.initial
    }
}

impl X11Capturer {
    pub(crate) fn open(
        display: Option<&str>,
        screen_id: u32,
        options: CaptureOptions,
    ) -> Result<Self, MediaError> {
        let (conn, screen_num) = connect(display)?;
        let screen = super::screens::find_screen(&conn, screen_num, screen_id)?;
        let root = conn.setup().roots[screen_num].root;
        check_pixel_format(&conn, screen_num)?;
        let (damage, region) = watch_damage(&conn, root)?;
        conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)
            .map_err(x11)?;
        watch_pointer_motion(&conn, root);
        watch_layout(&conn, root)?;
        let size = (screen.width, screen.height);
        let grabber = Grabber::new(
            &conn,
            root,
            (screen.x, screen.y),
            size,
            options.use_shared_memory,
        )?;
        tracing::debug!(screen = %screen.name, shm = grabber.uses_shm(), "X11 capture opened");
        Ok(Self {
            frame: Frame::new(screen.width, screen.height)?,
            conn,
            root,
            screen,
            grabber,
            damage,
            region,
            cursor_serial: None,
            cursor_position: None,
            announced: false,
            screen_num,
        })
    }

    fn drain_events(&self) -> Result<Pending, MediaError> {
        let mut pending = Pending::default();
        while let Some(event) = self.conn.poll_for_event().map_err(x11)? {
            match event {
                Event::DamageNotify(_) => pending.damaged = true,
                Event::XfixesCursorNotify(_) => pending.cursor_changed = true,
                Event::XinputRawMotion(_) => pending.pointer_moved = true,
                Event::ConfigureNotify(e) if e.window == self.root => pending.layout_changed = true,
                Event::RandrScreenChangeNotify(_) => pending.layout_changed = true,
                _ => {}
            }
        }
        Ok(pending)
    }

    fn build_update(&mut self, pending: Pending) -> Result<CaptureUpdate, MediaError> {
        let mut update = CaptureUpdate::default();
        if pending.damaged {
            update.damage = self.refresh_damage()?;
        }
        if pending.cursor_changed || pending.initial {
            update.cursor_shape = self.read_cursor_shape()?;
        }
        if pending.pointer_moved || pending.initial {
            update.cursor_position = self.read_cursor_position()?;
        }
        Ok(update)
    }

    /// Takes the accumulated damage, re-reads those areas and returns them.
    fn refresh_damage(&mut self) -> Result<Vec<Rect>, MediaError> {
        self.conn
            .damage_subtract(self.damage, x11rb::NONE, self.region)
            .map_err(x11)?;
        let reply = self
            .conn
            .xfixes_fetch_region(self.region)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let mut rects: Vec<Rect> = reply
            .rectangles
            .iter()
            .filter_map(|r| self.to_frame_rect(r))
            .collect();
        if rects.len() > MAX_DAMAGE_RECTS {
            rects = vec![rects.iter().fold(Rect::default(), |acc, r| acc.union(r))];
        }
        for rect in &rects {
            self.grabber.grab(&self.conn, &mut self.frame, *rect)?;
        }
        Ok(rects)
    }

    /// A damage rectangle in desktop coordinates, clipped to this screen.
    fn to_frame_rect(&self, r: &x11rb::protocol::xproto::Rectangle) -> Option<Rect> {
        let x = i32::from(r.x) - self.screen.x;
        let y = i32::from(r.y) - self.screen.y;
        let (left, top) = (x.max(0), y.max(0));
        let right = (x + i32::from(r.width)).min(self.screen.width as i32);
        let bottom = (y + i32::from(r.height)).min(self.screen.height as i32);
        (right > left && bottom > top).then(|| {
            Rect::new(
                left as u32,
                top as u32,
                (right - left) as u32,
                (bottom - top) as u32,
            )
        })
    }

    /// Fails with [`MediaError::ScreenChanged`] if this screen's geometry changed.
    fn check_layout(&self) -> Result<(), MediaError> {
        match super::screens::find_screen(&self.conn, self.screen_num, self.screen.id) {
            Ok(now) if now == self.screen => Ok(()),
            Ok(_) | Err(MediaError::NoSuchScreen(_)) => Err(MediaError::ScreenChanged),
            Err(other) => Err(other),
        }
    }

    fn read_cursor_shape(&mut self) -> Result<Option<CursorShape>, MediaError> {
        let reply = self
            .conn
            .xfixes_get_cursor_image()
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let (width, height) = (u32::from(reply.width), u32::from(reply.height));
        let too_big = width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE;
        let wrong_len = reply.cursor_image.len() != width as usize * height as usize;
        if self.cursor_serial == Some(reply.cursor_serial) || too_big || wrong_len {
            return Ok(None);
        }
        self.cursor_serial = Some(reply.cursor_serial);
        Ok(Some(CursorShape {
            width,
            height,
            hot_x: u32::from(reply.xhot),
            hot_y: u32::from(reply.yhot),
            serial: reply.cursor_serial,
            rgba: CursorShape::rgba_from_premultiplied_argb(&reply.cursor_image),
        }))
    }

    fn read_cursor_position(&mut self) -> Result<Option<CursorPosition>, MediaError> {
        let reply = self
            .conn
            .query_pointer(self.root)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let position = CursorPosition {
            x: i32::from(reply.root_x) - self.screen.x,
            y: i32::from(reply.root_y) - self.screen.y,
        };
        if self.cursor_position == Some(position) {
            return Ok(None);
        }
        self.cursor_position = Some(position);
        Ok(Some(position))
    }
}

impl ScreenCapturer for X11Capturer {
    fn screen(&self) -> &ScreenInfo {
        &self.screen
    }

    fn capture_full(&mut self) -> Result<&Frame, MediaError> {
        // Drop damage accumulated so far: the full read covers it.
        self.conn
            .damage_subtract(self.damage, x11rb::NONE, x11rb::NONE)
            .map_err(x11)?;
        let bounds = self.frame.bounds();
        self.grabber.grab(&self.conn, &mut self.frame, bounds)?;
        Ok(&self.frame)
    }

    fn wait_update(&mut self, timeout: Duration) -> Result<CaptureUpdate, MediaError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = self.drain_events()?;
            if pending.layout_changed {
                self.check_layout()?;
            }
            pending.initial = !self.announced;
            self.announced = true;
            if pending.any() {
                let update = self.build_update(pending)?;
                if !update.is_empty() {
                    return Ok(update);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(CaptureUpdate::default());
            }
            wait_readable(&self.conn, left)?;
        }
    }

    fn frame(&self) -> &Frame {
        &self.frame
    }

    fn uses_shared_memory(&self) -> bool {
        self.grabber.uses_shm()
    }
}

/// Checks that root-window pixels are 32-bit little-endian BGRX.
fn check_pixel_format(conn: &RustConnection, screen_num: usize) -> Result<(), MediaError> {
    let setup = conn.setup();
    let root = &setup.roots[screen_num];
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == root.root_depth)
        .map(|f| f.bits_per_pixel);
    let visual = root
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == root.root_visual);
    let masks = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask));
    if bpp == Some(32)
        && setup.image_byte_order == ImageOrder::LSB_FIRST
        && masks == Some((0xff_0000, 0xff00, 0xff))
    {
        Ok(())
    } else {
        Err(MediaError::PixelFormat(format!(
            "depth {} with {bpp:?} bits per pixel and masks {masks:x?}",
            root.root_depth
        )))
    }
}

/// Starts DAMAGE tracking of the root window; returns the damage and a scratch region.
fn watch_damage(
    conn: &RustConnection,
    root: Window,
) -> Result<(damage::Damage, xfixes::Region), MediaError> {
    require_extension(conn, xfixes::X11_EXTENSION_NAME)?;
    require_extension(conn, damage::X11_EXTENSION_NAME)?;
    conn.xfixes_query_version(5, 0)
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    conn.damage_query_version(1, 1)
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    let damage = conn.generate_id().map_err(x11)?;
    conn.damage_create(damage, root, ReportLevel::NON_EMPTY)
        .map_err(x11)?;
    let region = conn.generate_id().map_err(x11)?;
    conn.xfixes_create_region(region, &[]).map_err(x11)?;
    Ok((damage, region))
}

/// Asks for root-window resizes and RandR changes, which end this capturer.
fn watch_layout(conn: &RustConnection, root: Window) -> Result<(), MediaError> {
    use x11rb::protocol::randr::{self, ConnectionExt as _, NotifyMask};
    use x11rb::protocol::xproto::{ChangeWindowAttributesAux, EventMask};
    let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
    conn.change_window_attributes(root, &aux).map_err(x11)?;
    if require_extension(conn, randr::X11_EXTENSION_NAME).is_ok() {
        conn.randr_select_input(root, NotifyMask::SCREEN_CHANGE)
            .map_err(x11)?;
    }
    Ok(())
}

/// Asks for XInput2 raw motion so pointer moves wake the capturer; without XInput2 the
/// position is still read whenever something else changes.
fn watch_pointer_motion(conn: &RustConnection, root: Window) {
    let selected = (|| -> Result<(), MediaError> {
        require_extension(conn, xinput::X11_EXTENSION_NAME)?;
        conn.xinput_xi_query_version(2, 0)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let mask = xinput::EventMask {
            deviceid: xinput::Device::ALL_MASTER.into(),
            mask: vec![XIEventMask::RAW_MOTION],
        };
        conn.xinput_xi_select_events(root, &[mask])
            .map_err(x11)?
            .check()
            .map_err(x11)
    })();
    if let Err(err) = selected {
        tracing::info!(error = %err, "no XInput2 raw motion; cursor position follows damage");
    }
}
