//! The [`InputInjector`] and [`Clipboard`] traits, and the mapping from browser
//! physical key codes (`KeyboardEvent.code`) to evdev scancodes.

use std::str::FromStr;
use std::time::Duration;

use keycode::{KeyMap, KeyMappingCode};

use crate::capture::ScreenInfo;
use crate::error::MediaError;

/// A pointer button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointerButton {
    /// Primary button.
    Left,
    /// Wheel button.
    Middle,
    /// Secondary button.
    Right,
    /// "Back" side button.
    Back,
    /// "Forward" side button.
    Forward,
}

/// Keys a browser cannot send itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialKey {
    /// Ctrl+Alt+Del (on Linux the key combination; on Windows agents the SAS).
    CtrlAltDel,
    /// Alt+Tab.
    AltTab,
    /// Alt+Esc.
    AltEsc,
    /// Ctrl+Esc.
    CtrlEsc,
    /// The Windows/Super key alone.
    Win,
    /// Print Screen.
    PrintScreen,
}

impl SpecialKey {
    /// The physical keys pressed in order (and released in reverse).
    pub const fn codes(self) -> &'static [&'static str] {
        match self {
            Self::CtrlAltDel => &["ControlLeft", "AltLeft", "Delete"],
            Self::AltTab => &["AltLeft", "Tab"],
            Self::AltEsc => &["AltLeft", "Escape"],
            Self::CtrlEsc => &["ControlLeft", "Escape"],
            Self::Win => &["MetaLeft"],
            Self::PrintScreen => &["PrintScreen"],
        }
    }
}

impl PointerButton {
    /// Buttons in the order of the protocol's button mask bits (bit 0 = left).
    pub const BY_MASK_BIT: [Self; 5] = [
        Self::Left,
        Self::Middle,
        Self::Right,
        Self::Back,
        Self::Forward,
    ];

    /// The presses and releases that turn button mask `old` into `new`
    /// (bit 0 left, 1 middle, 2 right, 3 back, 4 forward; other bits ignored).
    pub fn changes(old: u32, new: u32) -> Vec<(Self, bool)> {
        Self::BY_MASK_BIT
            .iter()
            .enumerate()
            .filter(|(bit, _)| (old ^ new) & (1 << bit) != 0)
            .map(|(bit, &button)| (button, new & (1 << bit) != 0))
            .collect()
    }
}

/// Injects a viewer's input into the remote session.
///
/// Coordinates are pixels of the captured screen ([`ScreenInfo`]); use [`scale_point`]
/// to map a viewer's canvas coordinates. Every key and button pressed through an
/// injector is remembered until released, so [`InputInjector::release_all`] (called
/// when a viewer leaves or the session ends) leaves nothing held.
pub trait InputInjector: Send {
    /// Moves the pointer to `(x, y)` on the screen, clamped to its edges.
    ///
    /// # Errors
    /// Platform failures ([`MediaError::X11`] on X11).
    fn move_pointer(&mut self, x: u32, y: u32) -> Result<(), MediaError>;

    /// Presses or releases a pointer button.
    ///
    /// # Errors
    /// Platform failures.
    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), MediaError>;

    /// Scrolls by whole notches; positive `dy` scrolls down, positive `dx` right.
    ///
    /// # Errors
    /// Platform failures.
    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), MediaError>;

    /// Presses or releases the physical key named by a `KeyboardEvent.code` value.
    ///
    /// # Errors
    /// [`MediaError::UnknownKey`] for a code that names no key; platform failures.
    fn key(&mut self, code: &str, pressed: bool) -> Result<(), MediaError>;

    /// Sends a special key sequence.
    ///
    /// # Errors
    /// Platform failures.
    fn special_key(&mut self, key: SpecialKey) -> Result<(), MediaError>;

    /// Releases every key and button this injector holds down.
    ///
    /// # Errors
    /// Platform failures.
    fn release_all(&mut self) -> Result<(), MediaError>;
}

/// Reads and writes the remote clipboard's text, and notices when it changes there.
pub trait Clipboard: Send {
    /// Makes `text` the clipboard content (the agent owns the selection until someone
    /// else copies).
    ///
    /// # Errors
    /// [`MediaError::ClipboardTooLarge`] above [`crate::limits::MAX_CLIPBOARD_BYTES`].
    fn set_text(&mut self, text: &str) -> Result<(), MediaError>;

    /// The current clipboard text, if any (capped; larger content is refused).
    ///
    /// # Errors
    /// [`MediaError::Clipboard`] when the owner does not answer in time;
    /// [`MediaError::ClipboardTooLarge`].
    fn text(&mut self) -> Result<Option<String>, MediaError>;

    /// Waits up to `timeout` for another program to take the clipboard and returns its
    /// text; `None` on timeout.
    ///
    /// # Errors
    /// As [`Clipboard::text`].
    fn wait_change(&mut self, timeout: Duration) -> Result<Option<String>, MediaError>;
}

/// The evdev scancode of a `KeyboardEvent.code` value (`"KeyA"` → 30).
///
/// # Errors
/// [`MediaError::UnknownKey`] when the code names no key.
pub fn evdev_code(code: &str) -> Result<u16, MediaError> {
    let unknown = || MediaError::UnknownKey(code.chars().take(32).collect());
    let mapping = KeyMappingCode::from_str(code).map_err(|_| unknown())?;
    match KeyMap::from(mapping).evdev {
        0 => Err(unknown()),
        evdev => Ok(evdev),
    }
}

/// Turns wheel deltas in 1/120 notch units (the protocol's `WheelEvent`, like Windows)
/// into whole notches, carrying fractions (trackpads) over to the next event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WheelAccumulator {
    x: i32,
    y: i32,
}

impl WheelAccumulator {
    /// One notch in delta units.
    pub const NOTCH: i32 = 120;
    /// Largest delta taken from one event; more is clamped.
    const MAX_DELTA: i32 = crate::limits::MAX_WHEEL_NOTCHES * Self::NOTCH;

    /// Adds a delta and returns the whole notches to inject now, `(dx, dy)`.
    pub fn add(&mut self, delta_x: i32, delta_y: i32) -> (i32, i32) {
        let take = |acc: &mut i32, delta: i32| {
            *acc = (*acc + delta.clamp(-Self::MAX_DELTA, Self::MAX_DELTA))
                .clamp(-Self::MAX_DELTA, Self::MAX_DELTA);
            let notches = *acc / Self::NOTCH;
            *acc -= notches * Self::NOTCH;
            notches
        };
        (take(&mut self.x, delta_x), take(&mut self.y, delta_y))
    }
}

/// Pastes `text` into the focused remote application: makes it the clipboard content,
/// then presses Ctrl+V (physical keys, so it works on any layout).
///
/// # Errors
/// As [`Clipboard::set_text`] and [`InputInjector::key`].
pub fn paste_text(
    injector: &mut dyn InputInjector,
    clipboard: &mut dyn Clipboard,
    text: &str,
) -> Result<(), MediaError> {
    clipboard.set_text(text)?;
    for (code, pressed) in [
        ("ControlLeft", true),
        ("KeyV", true),
        ("KeyV", false),
        ("ControlLeft", false),
    ] {
        injector.key(code, pressed)?;
    }
    Ok(())
}

/// Maps a point on a viewer's `from_width × from_height` canvas to screen pixels.
pub fn scale_point(
    x: f64,
    y: f64,
    from_width: f64,
    from_height: f64,
    screen: &ScreenInfo,
) -> (u32, u32) {
    let scale = |v: f64, from: f64, to: u32| -> u32 {
        if from <= 0.0 || !v.is_finite() {
            return 0;
        }
        ((v / from * f64::from(to)).floor()).clamp(0.0, f64::from(to.saturating_sub(1))) as u32
    };
    (
        scale(x, from_width, screen.width),
        scale(y, from_height, screen.height),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_codes_map_to_evdev_including_extended_keys() {
        let table = [
            ("KeyA", 30),
            ("ControlLeft", 29),
            ("ControlRight", 97),
            ("AltRight", 100),
            ("ArrowUp", 103),
            ("Numpad8", 72),
            ("NumpadDivide", 98),
            ("Slash", 53),
            ("MetaLeft", 125),
            ("Delete", 111),
            ("NumpadEnter", 96),
        ];
        for (code, evdev) in table {
            assert_eq!(evdev_code(code).unwrap(), evdev, "{code}");
        }
    }

    #[test]
    fn button_mask_changes_become_presses_and_releases() {
        use PointerButton::{Left, Right};
        assert_eq!(
            PointerButton::changes(0, 0b101),
            vec![(Left, true), (Right, true)]
        );
        assert_eq!(PointerButton::changes(0b101, 0b100), vec![(Left, false)]);
        assert_eq!(PointerButton::changes(0, 1 << 9), vec![]);
    }

    #[test]
    fn every_special_key_maps_to_known_codes() {
        for key in [
            SpecialKey::CtrlAltDel,
            SpecialKey::AltTab,
            SpecialKey::AltEsc,
            SpecialKey::CtrlEsc,
            SpecialKey::Win,
            SpecialKey::PrintScreen,
        ] {
            for code in key.codes() {
                assert!(evdev_code(code).is_ok(), "{key:?} {code}");
            }
        }
    }

    #[test]
    fn wheel_deltas_become_whole_notches_and_fractions_carry_over() {
        let mut wheel = WheelAccumulator::default();
        assert_eq!(wheel.add(0, 240), (0, 2));
        assert_eq!(wheel.add(0, 60), (0, 0));
        assert_eq!(wheel.add(-120, 60), (-1, 1));
        assert_eq!(wheel.add(0, i32::MAX), (0, 50));
        assert_eq!(wheel.add(0, i32::MIN), (0, -50));
    }

    #[test]
    fn unknown_codes_are_refused() {
        assert!(matches!(
            evdev_code("NoSuchKey"),
            Err(MediaError::UnknownKey(_))
        ));
        assert!(evdev_code("").is_err());
    }

    #[test]
    fn viewer_points_scale_to_the_screen_and_clamp() {
        let screen = ScreenInfo {
            id: 0,
            name: "s".into(),
            x: 100,
            y: 0,
            width: 1920,
            height: 1080,
            primary: true,
        };
        assert_eq!(scale_point(480.0, 270.0, 960.0, 540.0, &screen), (960, 540));
        assert_eq!(scale_point(-5.0, 9999.0, 960.0, 540.0, &screen), (0, 1079));
        assert_eq!(scale_point(f64::NAN, 1.0, 0.0, 540.0, &screen), (0, 2));
    }
}
