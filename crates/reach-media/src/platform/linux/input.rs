//! [`XTestInjector`]: viewer input played into the X server with XTEST, keys by
//! physical scancode (evdev + 8 = X keycode) so the remote layout picks the character.

use std::collections::BTreeSet;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT, KEY_RELEASE_EVENT,
    MOTION_NOTIFY_EVENT, Window,
};
use x11rb::protocol::xtest::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use super::{connect, require_extension, x11};
use crate::limits::MAX_WHEEL_NOTCHES;
use crate::{InputInjector, MediaError, PointerButton, ScreenInfo, SpecialKey, evdev_code};

/// Injects input into one screen of an X display.
pub(crate) struct XTestInjector {
    conn: RustConnection,
    root: Window,
    screen: ScreenInfo,
    held_keys: BTreeSet<u8>,
    held_buttons: BTreeSet<u8>,
}

impl XTestInjector {
    pub(crate) fn open(display: Option<&str>, screen_id: u32) -> Result<Self, MediaError> {
        let (conn, screen_num) = connect(display)?;
        let screen = super::screens::find_screen(&conn, screen_num, screen_id)?;
        require_extension(&conn, xtest::X11_EXTENSION_NAME)?;
        conn.xtest_get_version(2, 2)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let root = conn.setup().roots[screen_num].root;
        Ok(Self {
            conn,
            root,
            screen,
            held_keys: BTreeSet::new(),
            held_buttons: BTreeSet::new(),
        })
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), MediaError> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .map_err(x11)?;
        Ok(())
    }

    fn fake_key(&mut self, keycode: u8, pressed: bool) -> Result<(), MediaError> {
        let kind = if pressed {
            KEY_PRESS_EVENT
        } else {
            KEY_RELEASE_EVENT
        };
        self.fake(kind, keycode, 0, 0)?;
        if pressed {
            self.held_keys.insert(keycode);
        } else {
            self.held_keys.remove(&keycode);
        }
        Ok(())
    }

    fn fake_button(&mut self, number: u8, pressed: bool) -> Result<(), MediaError> {
        let kind = if pressed {
            BUTTON_PRESS_EVENT
        } else {
            BUTTON_RELEASE_EVENT
        };
        self.fake(kind, number, 0, 0)?;
        if pressed {
            self.held_buttons.insert(number);
        } else {
            self.held_buttons.remove(&number);
        }
        Ok(())
    }

    fn click(&mut self, number: u8, times: i32) -> Result<(), MediaError> {
        for _ in 0..times.min(MAX_WHEEL_NOTCHES) {
            self.fake(BUTTON_PRESS_EVENT, number, 0, 0)?;
            self.fake(BUTTON_RELEASE_EVENT, number, 0, 0)?;
        }
        Ok(())
    }
}

/// The X keycode of a physical key code.
fn x_keycode(code: &str) -> Result<u8, MediaError> {
    u8::try_from(evdev_code(code)? + 8).map_err(|_| MediaError::UnknownKey(code.to_owned()))
}

impl InputInjector for XTestInjector {
    fn move_pointer(&mut self, x: u32, y: u32) -> Result<(), MediaError> {
        let x = self.screen.x + x.min(self.screen.width - 1) as i32;
        let y = self.screen.y + y.min(self.screen.height - 1) as i32;
        self.fake(MOTION_NOTIFY_EVENT, 0, x as i16, y as i16)?;
        super::sync(&self.conn)
    }

    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), MediaError> {
        let number = match button {
            PointerButton::Left => 1,
            PointerButton::Middle => 2,
            PointerButton::Right => 3,
            PointerButton::Back => 8,
            PointerButton::Forward => 9,
        };
        self.fake_button(number, pressed)?;
        super::sync(&self.conn)
    }

    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), MediaError> {
        let vertical = if dy < 0 { 4 } else { 5 };
        let horizontal = if dx < 0 { 6 } else { 7 };
        self.click(vertical, dy.saturating_abs())?;
        self.click(horizontal, dx.saturating_abs())?;
        super::sync(&self.conn)
    }

    fn key(&mut self, code: &str, pressed: bool) -> Result<(), MediaError> {
        let keycode = x_keycode(code)?;
        self.fake_key(keycode, pressed)?;
        super::sync(&self.conn)
    }

    fn special_key(&mut self, key: SpecialKey) -> Result<(), MediaError> {
        let codes = key
            .codes()
            .iter()
            .map(|c| x_keycode(c))
            .collect::<Result<Vec<_>, _>>()?;
        for &code in &codes {
            self.fake_key(code, true)?;
        }
        for &code in codes.iter().rev() {
            self.fake_key(code, false)?;
        }
        super::sync(&self.conn)
    }

    fn release_all(&mut self) -> Result<(), MediaError> {
        for keycode in std::mem::take(&mut self.held_keys) {
            self.fake(KEY_RELEASE_EVENT, keycode, 0, 0)?;
        }
        for number in std::mem::take(&mut self.held_buttons) {
            self.fake(BUTTON_RELEASE_EVENT, number, 0, 0)?;
        }
        super::sync(&self.conn)
    }
}

impl Drop for XTestInjector {
    fn drop(&mut self) {
        if let Err(err) = self.release_all() {
            tracing::warn!(error = %err, "could not release held keys on close");
        }
    }
}
